/** Schemas used by many routes: problems, timestamps, ids. */
import { z } from "@hono/zod-openapi";
import { PROBLEM_CODES, PROBLEM_MEDIA_TYPE, TokenJsonSchema } from "@revq/shared";

export const Problem = z
  .object({
    type: z.string().openapi({ example: "urn:revq:problem:invalid-request" }),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    instance: z.string().optional(),
    code: z
      .union([
        z.enum(Object.keys(PROBLEM_CODES) as [keyof typeof PROBLEM_CODES]),
        z.string().regex(/^[a-z-]+\.[a-z-]+$/),
      ])
      .openapi({
        description:
          "A stable code, also the tail of `type`; a failed format check of an upload answers `<format>.<code>` (e.g. `token-stream.bad-magic`).",
      }),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem", { description: "An RFC 9457 problem document." });

const DESCRIPTIONS: Record<number, string> = {
  400: "The request is malformed; `errors` names each invalid field",
  401: "No key, or an unknown or revoked one",
  403: "The key is of the wrong kind for this route",
  404: "No such object for this tenant",
  409: "The object is in a state that does not allow this",
  413: "The body is over the size limit",
  415: "The body's media type is not accepted here",
  416: "The Range lies outside the object",
  422: "The body is well-formed but cannot be processed",
  429: "Too many requests of this kind for this tenant; `Retry-After` says when to retry",
};

/** OpenAPI response entries for the given problem statuses. */
export function problems(...statuses: (keyof typeof DESCRIPTIONS)[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: DESCRIPTIONS[s], content: { [PROBLEM_MEDIA_TYPE]: { schema: Problem } } },
    ]),
  );
}

/** Times on the wire (@revq/shared's Timestamp) from D1's milliseconds. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** The query of a paged list, newest first: up to `limit` items before `cursor`. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().optional(),
});

export const bearerSecurity = (scheme: "apiKey" | "workerKey" | "adminKey") => [{ [scheme]: [] }];

/**
 * A JSON body or answer and its example. The example is typed as what the schema accepts, so
 * that one which drifts from its schema fails typecheck; tests/edge/openapi.test.ts parses each.
 */
export function json<T extends z.ZodType>(schema: T, example: z.input<T>) {
  return { "application/json": { schema, example } };
}

/**
 * Headers of a binary answer, each with an example: what the document can show of bytes it
 * cannot show.
 */
export function answerHeaders(headers: Record<string, { description: string; example: string }>) {
  return Object.fromEntries(
    Object.entries(headers).map(([name, { description, example }]) => [
      name,
      { description, schema: { type: "string" as const }, example },
    ]),
  );
}

/** The JSON token document (docs/token-stream.md), as decode, uploads and downloads carry it. */
export const TokenDocument = TokenJsonSchema.meta({
  id: "TokenDocument",
  description:
    "Token ids as JSON: the token stream's header fields and one array of `tokensPerRecord` ids per record, each below `codesPerGroup`.",
});
