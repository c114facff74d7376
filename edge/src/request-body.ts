/**
 * Bodies that come in several forms (raw image or multipart, token stream or JSON, archive or
 * ids): a route names one reader per media type it takes, so every such route matches the type
 * the same way (parameters and case ignored) and refuses any other with the same 415.
 */
import { HttpProblem } from "./problem.ts";

/** How to read the body, by the media type it is sent as. */
export type BodyReaders<T> = Readonly<Record<string, (request: Request) => Promise<T>>>;

/** The body's media type without its parameters, in lower case; "" when none is given. */
export function mediaTypeOf(request: Request): string {
  return (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
}

/** The body, read by the reader of its media type; `what` names the body in the 415. */
export function readByMediaType<T>(
  request: Request,
  what: string,
  readers: BodyReaders<T>,
): Promise<T> {
  const mediaType = mediaTypeOf(request);
  if (!Object.hasOwn(readers, mediaType)) {
    const accepted = Object.keys(readers);
    throw new HttpProblem(
      415,
      "unsupported-media-type",
      `Send ${what} as ${accepted.slice(0, -1).join(", ")} or ${accepted.at(-1)}, not ${JSON.stringify(mediaType)}.`,
    );
  }
  return readers[mediaType](request);
}

/** The body parsed as JSON, or a 400 saying it is not JSON. */
export async function jsonBody(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    throw new HttpProblem(400, "bad-request", "The body is not valid JSON.");
  }
}
