/**
 * Serves an immutable bucket object over HTTP: strong ETag and If-None-Match (304), a single
 * Range (206), and the caching headers that immutability allows.
 */
import { HttpProblem } from "../../problem.ts";
import { contentRange, etagMatches, parseRange } from "./http-range.ts";

export type ServedObject = {
  bucket: R2Bucket;
  key: string;
  /** Size in bytes, known from D1 (so a 304 or 416 costs no R2 call). */
  size: number;
  /** The strong ETag, quotes included. */
  etag: string;
  contentType: string;
  cacheControl: string;
  headers?: Record<string, string>;
};

export async function serveObject(request: Request, object: ServedObject): Promise<Response> {
  const headers = new Headers({
    etag: object.etag,
    "cache-control": object.cacheControl,
    "accept-ranges": "bytes",
    "content-type": object.contentType,
    ...object.headers,
  });
  if (etagMatches(request.headers.get("if-none-match") ?? undefined, object.etag)) {
    return new Response(null, { status: 304, headers });
  }
  const ifRange = request.headers.get("if-range");
  const rangeHeader =
    ifRange === null || ifRange === object.etag ? request.headers.get("range") : null;
  const range = parseRange(rangeHeader ?? undefined, object.size);
  const body = await object.bucket.get(object.key, range ? { range } : {});
  if (!body)
    throw new HttpProblem(
      500,
      "object-missing",
      `The stored object behind ${new URL(request.url).pathname} is missing.`,
    );
  if (range) {
    headers.set("content-range", contentRange(range, object.size));
    headers.set("content-length", String(range.length));
    return new Response(request.method === "HEAD" ? null : body.body, { status: 206, headers });
  }
  headers.set("content-length", String(object.size));
  return new Response(request.method === "HEAD" ? null : body.body, { status: 200, headers });
}
