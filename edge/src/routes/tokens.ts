/**
 * GET /v1/jobs/{id}/tokens, the latency-critical route, and GET /v1/jobs/{id}/shards/{index}/tokens,
 * a dataset encode job's shard. They are mounted ahead of the jobs router and answer without
 * passing on, so they authenticate themselves: the key and the job are read in one D1 query (a
 * key joined to the job of its tenant), saving a round trip on every download.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { TOKEN_STREAM_MEDIA_TYPE } from "@revq/shared";
import { and, eq, isNull } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { database } from "../db/client.ts";
import { apiKeys, jobs } from "../db/schema.ts";
import { bearerKeyHash, checkKey } from "../middleware/auth.ts";
import { HttpProblem, invalidRequest } from "../problem.ts";
import { newRouter } from "../router.ts";
import { answerHeaders, bearerSecurity, json, problems, TokenDocument } from "../schemas/common.ts";
import { ids, manifestHash, tokenDocument, tokenStream } from "../schemas/examples.ts";
import { shardTokens } from "../services/jobs/dataset-outputs.ts";
import {
  jobTokenResponse,
  TOKEN_FORMATS,
  type TokenFormat,
  tokenResponse,
} from "../services/jobs/token-download.ts";

const binary = { schema: { type: "string" as const, format: "binary" } };
/** What a token download answers with, by `format`: the stream, its JSON document, or .npy. */
const TOKEN_FORMS = {
  [TOKEN_STREAM_MEDIA_TYPE]: binary,
  ...json(TokenDocument, tokenDocument),
  "application/octet-stream": binary,
};

/** Both routes' query and headers: the form, and a conditional or ranged read. */
const TokenQuery = z.object({ format: z.enum(TOKEN_FORMATS).default("binary") });
const TokenHeaders = z.object({
  // Record 0: the bytes after the 64-byte header, one stride of them.
  range: z
    .string()
    .optional()
    .openapi({ example: `bytes=64-${64 + tokenStream.recordStride - 1}` }),
  "if-none-match": z.string().optional(),
});

const route = createRoute({
  method: "get",
  path: "/{id}/tokens",
  operationId: "downloadJobTokens",
  tags: ["Jobs"],
  summary: "A finished encode job's tokens: the token stream, or JSON, or .npy",
  description:
    "The binary form is the token stream of docs/token-stream.md (`application/vnd.revq.tokens`); a record is addressable with `Range` (record i is bytes 64 + i·stride to 64 + (i+1)·stride − 1, stride in `Revq-Record-Stride`). Strong ETag, `If-None-Match` → 304, `Cache-Control: immutable`. A dataset encode job's is one stream of all its records in dataset order, made from its shards as it is sent (binary only, `Range` anywhere in it; 406 `format-not-for-dataset` for JSON or .npy, which its shards offer).",
  security: bearerSecurity("apiKey"),
  request: {
    params: z.object({
      id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.job }),
    }),
    query: TokenQuery,
    headers: TokenHeaders,
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
      content: TOKEN_FORMS,
    },
    206: { description: "The requested byte range of the token stream" },
    304: { description: "Not modified" },
    ...problems(400, 401, 403, 404, 406, 409, 416),
  },
});

const shardRoute = createRoute({
  method: "get",
  path: "/{id}/shards/{index}/tokens",
  operationId: "downloadJobShardTokens",
  tags: ["Jobs"],
  summary: "One token shard of a succeeded dataset encode job: the token stream, or JSON, or .npy",
  description:
    "Shard `index` (see GET /v1/jobs/{id}/shards) as a token stream of its own: its record r is the job's record `firstRecord` + r. The same forms, `Range`, ETag and caching as the job's tokens. 404 `no-shards` for a job that encoded images it named, `shard-not-found` past the last shard.",
  security: bearerSecurity("apiKey"),
  request: {
    params: z.object({
      id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.job }),
      index: z.string().openapi({
        param: { name: "index", in: "path" },
        description: "0 to the number of shards − 1.",
        example: "0",
      }),
    }),
    query: TokenQuery,
    headers: TokenHeaders,
  },
  responses: {
    200: {
      description: "The shard's tokens, in the form asked for",
      headers: answerHeaders({
        etag: { description: "Strong; the shard's", example: `"${tokenStream.etag}"` },
        "revq-record-count": {
          description: "Records in this shard",
          example: String(tokenStream.recordCount),
        },
      }),
      content: TOKEN_FORMS,
    },
    206: { description: "The requested byte range of the shard's token stream" },
    304: { description: "Not modified" },
    ...problems(400, 401, 403, 404, 406, 409, 416),
  },
});

export const tokenRoutes = newRouter();

/** The format asked for (400 for another), and the tenant's job of the key, read in one query. */
async function keyedJob(c: Context<AppEnv>) {
  const hash = await bearerKeyHash(c.req.header("authorization"));
  const format = c.req.query("format") ?? "binary";
  if (!(TOKEN_FORMATS as readonly string[]).includes(format)) {
    const message = `expected one of ${TOKEN_FORMATS.join(", ")}`;
    throw invalidRequest("query", [{ path: ["format"], message }]);
  }
  const id = c.req.param("id") as string;
  const [row] = await database(c.env)
    .select({ key: { kind: apiKeys.kind }, job: jobs })
    .from(apiKeys)
    .leftJoin(jobs, and(eq(jobs.id, id), eq(jobs.tenantId, apiKeys.tenantId)))
    .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
    .limit(1);
  checkKey(row?.key, "api");
  if (!row.job) throw new HttpProblem(404, "job-not-found", `No job ${id}.`);
  return { job: row.job, format: format as TokenFormat };
}

// Documented above and routed by hand: the answer is bytes (or JSON made from bytes), not a
// JSON value the route schema could type.
tokenRoutes.openAPIRegistry.registerPath(route);
tokenRoutes.get("/:id/tokens", async (c) => {
  const { job, format } = await keyedJob(c);
  return jobTokenResponse(c.env, (p) => c.executionCtx.waitUntil(p), c.req.raw, job, format);
});

tokenRoutes.openAPIRegistry.registerPath(shardRoute);
tokenRoutes.get("/:id/shards/:index/tokens", async (c) => {
  const { job, format } = await keyedJob(c);
  const stored = shardTokens(job, c.req.param("index"));
  return tokenResponse(c.env, (p) => c.executionCtx.waitUntil(p), c.req.raw, stored, format);
});
