/** POST /v1/decode: token ids to quantized latents (or to ids in another form), on the edge. */
import { createRoute, z } from "@hono/zod-openapi";
import { bucketKeys, readTokenJson, TOKEN_STREAM_MEDIA_TYPE } from "@revq/shared";
import { configOf } from "../config.ts";
import { type Db, database } from "../db/client.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { limitBody } from "../middleware/body-limit.ts";
import { rateLimit } from "../middleware/rate-limit.ts";
import { HttpProblem, invalidRequest } from "../problem.ts";
import { jsonBody, readByMediaType } from "../request-body.ts";
import { newRouter } from "../router.ts";
import { answerHeaders, bearerSecurity, json, problems, TokenDocument } from "../schemas/common.ts";
import { ids, tokenDocument } from "../schemas/examples.ts";
import {
  DECODE_FORMATS,
  DECODE_OUTPUTS,
  decodedSource,
  decodeTokens,
  streamSource,
  type TokenSource,
} from "../services/decode.ts";
import { findJob } from "../services/jobs/read.ts";
import { tokensOf } from "../services/jobs/token-download.ts";

/**
 * A token stream body is at most this big (256 records of the largest stride fit many times
 * over); a JSON body takes the edge-wide JSON limit first (middleware/body-limit.ts).
 */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

const Query = z.object({
  output: z.enum(DECODE_OUTPUTS).default("latents").openapi({
    description:
      "`latents`: codebook vectors in the normalised space, (N, C, H, W) F32; `ids`: the token ids.",
  }),
  format: z.enum(DECODE_FORMATS).optional().openapi({
    description:
      "latents: `npy` (default) or `safetensors` (tensor `latents`); ids: `json` (default) or `npy`.",
  }),
  tokenizer: z.string().optional().openapi({
    description:
      "The tokenizer to decode with; it must be the one the tokens name (422 otherwise).",
  }),
});

const JobRef = z.strictObject({
  job: z.string().openapi({ description: "A succeeded encode job's id." }),
});

const route = createRoute({
  method: "post",
  path: "/",
  operationId: "decodeTokens",
  tags: ["Decode"],
  summary: "Decode token ids: to quantized latents (codebook lookup) or to ids as JSON or .npy",
  description:
    'The body is a token stream (`application/vnd.revq.tokens`), the JSON token document, or `{"job": "job_..."}` for a finished encode job\'s tokens. Codebook rows are fetched from R2 with coalesced range reads, so tokenizers whose codebook exceeds a Worker\'s memory decode too; results are exact F32.',
  security: bearerSecurity("apiKey"),
  request: {
    query: Query,
    body: {
      required: true,
      content: {
        [TOKEN_STREAM_MEDIA_TYPE]: { schema: { type: "string", format: "binary" } },
        ...json(z.union([JobRef, TokenDocument]), { job: ids.job }),
      },
    },
  },
  responses: {
    200: {
      description:
        "Latents (.npy or safetensors, F32 of shape (N, C, H, W)) or ids (the token document, or an int32 .npy of shape (N, T))",
      headers: answerHeaders({
        "revq-codebook-range-reads": {
          description: "Latents only: the codebook range reads the decode took",
          example: "2",
        },
        "revq-codebook-bytes-read": {
          description: "Latents only: the codebook bytes those reads fetched",
          example: "16384",
        },
      }),
      content: {
        "application/octet-stream": { schema: { type: "string", format: "binary" } },
        ...json(TokenDocument, tokenDocument),
      },
    },
    ...problems(400, 401, 403, 409, 413, 415, 422, 429),
  },
});

async function tokensFromJob(env: { BUCKET: R2Bucket }, db: Db, tenantId: string, jobId: string) {
  const job = await findJob(db, tenantId, jobId).catch((error) => {
    if (error instanceof HttpProblem)
      throw new HttpProblem(422, "job-not-found", `No job ${jobId} to decode.`);
    throw error;
  });
  tokensOf(job);
  const object = await env.BUCKET.get(bucketKeys.jobTokens(tenantId, job.id));
  if (!object)
    throw new HttpProblem(500, "object-missing", `The token stream of job ${job.id} is missing.`);
  return streamSource(object.body);
}

export const decodeRoutes = newRouter();
decodeRoutes.use("*", requireKey("api"));

// Documented above and routed by hand: the body is bytes or one of two JSON shapes, and the
// answer is bytes; the query is validated with the route's own schema.
decodeRoutes.openAPIRegistry.registerPath(route);
decodeRoutes.post(
  "/",
  rateLimit("decode"),
  limitBody(() => ({
    maxSize: MAX_BODY_BYTES,
    code: "content-too-large",
    detail: `A decode body is at most ${MAX_BODY_BYTES} bytes.`,
  })),
  async (c) => {
    const parsed = Query.safeParse(c.req.query());
    if (!parsed.success) throw invalidRequest("query", parsed.error.issues);
    const query = parsed.data;
    const tenantId = tenantOf(c.get("principal"));
    const db = database(c.env);
    const tokens = await readByMediaType<TokenSource>(c.req.raw, "tokens", {
      [TOKEN_STREAM_MEDIA_TYPE]: (body) => streamSource(body.body ?? new Blob().stream()),
      "application/json": async (body) => {
        const document = await jsonBody(body);
        const ref = JobRef.safeParse(document);
        return ref.success
          ? tokensFromJob(c.env, db, tenantId, ref.data.job)
          : decodedSource(readTokenJson(document));
      },
    });
    const format = query.format ?? (query.output === "latents" ? "npy" : "json");
    const decoded = await decodeTokens(c.env, db, configOf(c.env), tenantId, tokens, {
      ...query,
      format,
    });
    const headers: Record<string, string> = { "content-type": decoded.contentType };
    if (decoded.stats) {
      headers["revq-codebook-range-reads"] = String(decoded.stats.rangeReads);
      headers["revq-codebook-bytes-read"] = String(decoded.stats.bytesRead);
    }
    return new Response(decoded.body, { status: 200, headers });
  },
);
