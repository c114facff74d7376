/**
 * GET /v1/jobs/{id}/tokens, the latency-critical route. It is mounted ahead of the jobs router
 * and answers without passing on, so it authenticates itself: the key and the job are read in
 * one D1 query (a key joined to the job of its tenant), saving a round trip on every download.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, isNull } from "drizzle-orm";
import { database } from "../db/client.ts";
import { apiKeys, jobs } from "../db/schema.ts";
import { bearerKeyHash, checkKey } from "../middleware/auth.ts";
import { HttpProblem, invalidRequest } from "../problem.ts";
import { newRouter } from "../router.ts";
import { answerHeaders, bearerSecurity, json, problems, TokenDocument } from "../schemas/common.ts";
import { ids, manifestHash, tokenDocument, tokenStream } from "../schemas/examples.ts";
import { TOKEN_FORMATS, type TokenFormat, tokenResponse } from "../services/jobs/token-download.ts";

const route = createRoute({
  method: "get",
  path: "/{id}/tokens",
  operationId: "downloadJobTokens",
  tags: ["Jobs"],
  summary: "A finished encode job's tokens: the token stream, or JSON, or .npy",
  description:
    "The binary form is the token stream of docs/token-stream.md (`application/vnd.revq.tokens`); a record is addressable with `Range` (record i is bytes 64 + i·stride to 64 + (i+1)·stride − 1, stride in `Revq-Record-Stride`). Strong ETag, `If-None-Match` → 304, `Cache-Control: immutable`.",
  security: bearerSecurity("apiKey"),
  request: {
    params: z.object({
      id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.job }),
    }),
    query: z.object({ format: z.enum(TOKEN_FORMATS).default("binary") }),
    headers: z.object({
      // Record 0: the bytes after the 64-byte header, one stride of them.
      range: z
        .string()
        .optional()
        .openapi({ example: `bytes=64-${64 + tokenStream.recordStride - 1}` }),
      "if-none-match": z.string().optional(),
    }),
  },
  responses: {
    200: {
      description:
        "The tokens: the token stream's bytes (`binary`), the token document (`json`) or an int32 .npy of shape (N, T) (`npy`)",
      headers: answerHeaders({
        etag: { description: "Strong; the token stream's", example: `"${tokenStream.etag}"` },
        "revq-tokenizer": { description: "The tokenizer's manifest hash", example: manifestHash },
        "revq-record-count": {
          description: "Records (N), one per image",
          example: String(tokenStream.recordCount),
        },
        "revq-record-stride": {
          description: "Bytes per record in the token stream",
          example: String(tokenStream.recordStride),
        },
      }),
      content: {
        "application/vnd.revq.tokens": { schema: { type: "string", format: "binary" } },
        ...json(TokenDocument, tokenDocument),
        "application/octet-stream": { schema: { type: "string", format: "binary" } },
      },
    },
    206: { description: "The requested byte range of the token stream" },
    304: { description: "Not modified" },
    ...problems(400, 401, 403, 404, 409),
  },
});

export const tokenRoutes = newRouter();

// Documented above and routed by hand: the answer is bytes (or JSON made from bytes), not a
// JSON value the route schema could type.
tokenRoutes.openAPIRegistry.registerPath(route);
tokenRoutes.get("/:id/tokens", async (c) => {
  const hash = await bearerKeyHash(c.req.header("authorization"));
  const format = c.req.query("format") ?? "binary";
  if (!(TOKEN_FORMATS as readonly string[]).includes(format)) {
    const message = `expected one of ${TOKEN_FORMATS.join(", ")}`;
    throw invalidRequest("query", [{ path: ["format"], message }]);
  }
  const id = c.req.param("id");
  const [row] = await database(c.env)
    .select({ key: { kind: apiKeys.kind }, job: jobs })
    .from(apiKeys)
    .leftJoin(jobs, and(eq(jobs.id, id), eq(jobs.tenantId, apiKeys.tenantId)))
    .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
    .limit(1);
  checkKey(row?.key, "api");
  if (!row.job) throw new HttpProblem(404, "job-not-found", `No job ${id}.`);
  return tokenResponse(
    c.env,
    (p) => c.executionCtx.waitUntil(p),
    c.req.raw,
    row.job,
    format as TokenFormat,
  );
});
