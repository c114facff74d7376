/** Jobs: create, read, list, cancel, and follow their events. */
import { createRoute, z } from "@hono/zod-openapi";
import {
  canonicalJson,
  EventPage,
  Job,
  JobCreate,
  JobKind,
  JobList,
  JobStatus,
  NPY_MEDIA_TYPE,
  RecordIndex,
  sha256Hex,
  TokenShardManifest,
  WebhookDeliveryList,
} from "@revq/shared";
import { and, asc, eq, gt } from "drizzle-orm";
import { configOf } from "../config.ts";
import { database } from "../db/client.ts";
import { jobEvents, webhookDeliveries } from "../db/schema.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { rateLimit } from "../middleware/rate-limit.ts";
import { newRouter } from "../router.ts";
import {
  answerHeaders,
  bearerSecurity,
  isoTime,
  json,
  PageQuery,
  problems,
} from "../schemas/common.ts";
import {
  at,
  delivery,
  ids,
  job,
  jobCreate,
  manifestHash,
  queuedJob,
  tokenStream,
  webhookSecret,
} from "../schemas/examples.ts";

import { withIdempotency } from "../services/idempotency.ts";
import { cancelJob } from "../services/jobs/cancel.ts";
import { createJob } from "../services/jobs/create.ts";
import { recordIndex, shardManifest } from "../services/jobs/dataset-outputs.ts";
import { jobImageResponse, jobLatentsResponse } from "../services/jobs/images.ts";
import { findJob, findJobView, listJobs } from "../services/jobs/read.ts";
import { deliveryPage } from "./webhooks.ts";

const security = bearerSecurity("apiKey");
const IdParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.job }),
});

const create = createRoute({
  method: "post",
  path: "/",
  operationId: "createJob",
  tags: ["Jobs"],
  summary: "Create an encode, reconstruct or train job",
  description:
    "Checks every reference (tokenizer ready, images and source job of this tenant) and queues one task for a GPU worker. Honours `Idempotency-Key`.",
  security,
  middleware: [rateLimit("jobs")],
  request: {
    headers: z.object({ "idempotency-key": z.string().optional() }),
    body: { required: true, content: json(JobCreate, jobCreate) },
  },
  responses: {
    202: { description: "Queued", content: json(Job, { ...queuedJob, webhookSecret }) },
    ...problems(400, 401, 403, 409, 422, 429),
  },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  operationId: "getJob",
  tags: ["Jobs"],
  summary: "One job",
  security,
  request: { params: IdParams },
  responses: {
    200: { description: "The job", content: json(Job, job) },
    ...problems(401, 403, 404),
  },
});

const list = createRoute({
  method: "get",
  path: "/",
  operationId: "listJobs",
  tags: ["Jobs"],
  summary: "The tenant's jobs, newest first, a page at a time",
  security,
  request: {
    query: PageQuery.extend({ status: JobStatus.optional(), kind: JobKind.optional() }),
  },
  responses: {
    200: { description: "A page", content: json(JobList, { jobs: [job], nextCursor: null }) },
    ...problems(400, 401, 403),
  },
});

const cancel = createRoute({
  method: "post",
  path: "/{id}/cancel",
  operationId: "cancelJob",
  tags: ["Jobs"],
  summary: "Cancel a queued or running job (a repeat is harmless)",
  security,
  request: { params: IdParams },
  responses: {
    200: {
      description: "Cancelled",
      content: json(Job, {
        ...queuedJob,
        status: "cancelled",
        updatedAt: at("10:00:01"),
        finishedAt: at("10:00:01"),
      }),
    },
    ...problems(401, 403, 404, 409),
  },
});

const events = createRoute({
  method: "get",
  path: "/{id}/events",
  operationId: "listJobEvents",
  tags: ["Jobs"],
  summary: "What happened to the job, in order: status changes, progress, metrics, worker messages",
  security,
  request: {
    params: IdParams,
    query: z.object({
      after: z.coerce.number().int().min(0).default(0),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
  },
  responses: {
    200: {
      description: "Events after `after`",
      content: json(EventPage, {
        events: [
          { id: 1, type: "status", data: { status: "queued" }, createdAt: job.createdAt },
          {
            id: 2,
            type: "status",
            data: { status: "running", attempt: 1, worker: "gpu-worker-1" },
            createdAt: at("10:00:01"),
          },
          { id: 3, type: "progress", data: job.progress, createdAt: at("10:00:03") },
          { id: 4, type: "status", data: { status: "succeeded" }, createdAt: job.finishedAt },
        ],
        next: null,
      }),
    },
    ...problems(400, 401, 403, 404),
  },
});

const jobDeliveries = createRoute({
  method: "get",
  path: "/{id}/deliveries",
  operationId: "listJobDeliveries",
  tags: ["Jobs"],
  summary:
    "The webhook deliveries about this job (its own URL's and the endpoints'), newest first, a page at a time, with attempts",
  security,
  request: { params: IdParams, query: PageQuery },
  responses: {
    200: {
      description: "A page",
      content: json(WebhookDeliveryList, { deliveries: [delivery], nextCursor: null }),
    },
    ...problems(400, 401, 403, 404),
  },
});

/** A dataset encode job of two images in one shard: the story's two images, from a dataset. */
const shardsExample: TokenShardManifest = {
  format: "revq.token-shards/v1",
  job: ids.job,
  tokenizerHash: manifestHash,
  dataset: ids.dataset,
  listingHash: "3f1d5c0be2a0a5e3a1b0d4f0e6a0c9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2",
  recordCount: 2,
  shardSize: 256,
  tokensPerRecord: 512,
  codesPerGroup: 4096,
  groups: 1,
  bitsPerToken: 12,
  shards: [
    {
      index: 0,
      firstRecord: 0,
      records: 2,
      bytes: tokenStream.bytes,
      etag: tokenStream.etag,
    },
  ],
};

const shards = createRoute({
  method: "get",
  path: "/{id}/shards",
  operationId: "getJobShards",
  tags: ["Jobs"],
  summary: "A succeeded dataset encode job's shard manifest",
  description:
    "Its token shards in record order, each with its first record, records, bytes and ETag; download one at /v1/jobs/{id}/shards/{index}/tokens, all of them as one stream at /v1/jobs/{id}/tokens. 404 `no-shards` for a job that encoded images it named, 409 `tokens-not-ready` before it succeeded.",
  security,
  request: { params: IdParams },
  responses: {
    200: { description: "The manifest", content: json(TokenShardManifest, shardsExample) },
    ...problems(401, 403, 404, 409),
  },
});

const records = createRoute({
  method: "get",
  path: "/{id}/records",
  operationId: "getJobRecords",
  tags: ["Jobs"],
  summary: "A succeeded dataset encode job's record index: which image each record is",
  description:
    "From the listing the job froze, so it stays right whatever happened to the dataset since: each record's shard and its image, an upload's `imageId` or a prefix dataset's `file` (its path under the tenant's files).",
  security,
  request: { params: IdParams },
  responses: {
    200: {
      description: "The index, in record order",
      content: json(RecordIndex, {
        format: "revq.record-index/v1",
        job: ids.job,
        dataset: ids.dataset,
        records: [
          { record: 0, shard: 0, imageId: ids.image },
          { record: 1, shard: 0, imageId: "img_01m8d0fxvcpfrrd0dgccvp9d00" },
        ],
      }),
    },
    ...problems(401, 403, 404, 409),
  },
});

const image = createRoute({
  method: "get",
  path: "/{id}/images/{index}",
  operationId: "downloadJobImage",
  tags: ["Jobs"],
  summary: "A succeeded reconstruct job's image of record `index` (a PNG)",
  description:
    "The URLs are listed in the job's `result.images`. Strong ETag, `If-None-Match` → 304, a single `Range`, `Cache-Control: immutable`. An index the job does not have is a 404.",
  security,
  request: {
    params: IdParams.extend({
      index: z.string().openapi({
        param: { name: "index", in: "path" },
        description: "0 to the number of records − 1.",
        example: "0",
      }),
    }),
    headers: z.object({
      range: z.string().optional().openapi({ example: "bytes=0-1023" }),
      "if-none-match": z.string().optional(),
    }),
  },
  responses: {
    200: {
      description: "The PNG the job made of record `index`",
      headers: answerHeaders({
        etag: {
          description: "The stored PNG's ETag, quoted",
          example: '"429bc3333d2b25905333a28f259126cc"',
        },
      }),
      content: { "image/png": { schema: z.string().openapi({ format: "binary" }) } },
    },
    206: { description: "The requested byte range" },
    304: { description: "Not modified" },
    ...problems(401, 403, 404, 409, 416),
  },
});

const latents = createRoute({
  method: "get",
  path: "/{id}/latents",
  operationId: "downloadJobLatents",
  tags: ["Jobs"],
  summary: "A succeeded reconstruct job's VAE latents (a float32 .npy of shape (N, C, H, W))",
  description:
    'What the images were decoded from: the rectifier\'s output, de-normalised, for every record, as diffusion and autoregressive pipelines take latents. Kept only for a job created with `"latents": true` (else 404 `latents-not-kept`). Strong ETag, `If-None-Match` → 304, a single `Range`, `Cache-Control: immutable`.',
  security,
  request: {
    params: IdParams,
    headers: z.object({
      range: z.string().optional().openapi({ example: "bytes=0-1023" }),
      "if-none-match": z.string().optional(),
    }),
  },
  responses: {
    200: {
      description: "The latents",
      headers: answerHeaders({
        etag: {
          description: "The stored .npy's ETag, quoted",
          example: '"5d41402abc4b2a76b9719d911017c592"',
        },
      }),
      content: { [NPY_MEDIA_TYPE]: { schema: z.string().openapi({ format: "binary" }) } },
    },
    206: { description: "The requested byte range" },
    304: { description: "Not modified" },
    ...problems(401, 403, 404, 409, 416),
  },
});

export const jobRoutes = newRouter();
jobRoutes.use("*", requireKey("api"));

jobRoutes.openapi(create, async (c) => {
  const tenantId = tenantOf(c.get("principal"));
  const body = c.req.valid("json");
  const db = database(c.env);
  // The secret stays out of the idempotency record: a replay answers the job without it.
  const shown: { webhookSecret?: string } = {};
  const view = await withIdempotency(
    c,
    tenantId,
    await sha256Hex(canonicalJson(body)),
    async () => {
      const { job, webhookSecret } = await createJob(c.env, db, configOf(c.env), tenantId, body);
      if (webhookSecret) shown.webhookSecret = webhookSecret;
      return findJobView(db, tenantId, job.id);
    },
  );
  c.header("location", `/v1/jobs/${view.id}`);
  return c.json({ ...view, ...shown }, 202);
});

jobRoutes.openapi(get, async (c) => {
  return c.json(
    await findJobView(database(c.env), tenantOf(c.get("principal")), c.req.valid("param").id),
    200,
  );
});

jobRoutes.openapi(list, async (c) => {
  const page = await listJobs(database(c.env), tenantOf(c.get("principal")), c.req.valid("query"));
  return c.json(page, 200);
});

jobRoutes.openapi(cancel, async (c) => {
  const db = database(c.env);
  return c.json(
    await cancelJob(c.env, db, tenantOf(c.get("principal")), c.req.valid("param").id),
    200,
  );
});

jobRoutes.openapi(events, async (c) => {
  const tenantId = tenantOf(c.get("principal"));
  const { id } = c.req.valid("param");
  const { after, limit } = c.req.valid("query");
  const db = database(c.env);
  await findJob(db, tenantId, id);
  const rows = await db
    .select()
    .from(jobEvents)
    .where(and(eq(jobEvents.jobId, id), eq(jobEvents.tenantId, tenantId), gt(jobEvents.id, after)))
    .orderBy(asc(jobEvents.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  return c.json(
    {
      events: page.map((e) => ({
        id: e.id,
        type: e.type,
        data: e.data,
        createdAt: isoTime(e.createdAt),
      })),
      next: rows.length > limit ? page[page.length - 1].id : null,
    },
    200,
  );
});

jobRoutes.openapi(jobDeliveries, async (c) => {
  const db = database(c.env);
  const job = await findJob(db, tenantOf(c.get("principal")), c.req.valid("param").id);
  const where = eq(webhookDeliveries.jobId, job.id);
  return c.json(await deliveryPage(db, where, c.req.valid("query")), 200);
});

jobRoutes.openapi(shards, async (c) => {
  const job = await findJob(database(c.env), tenantOf(c.get("principal")), c.req.valid("param").id);
  return c.json(shardManifest(job), 200);
});

jobRoutes.openapi(records, async (c) => {
  const job = await findJob(database(c.env), tenantOf(c.get("principal")), c.req.valid("param").id);
  return c.json(await recordIndex(c.env.BUCKET, job), 200);
});

jobRoutes.openapi(image, async (c) => {
  const { id, index } = c.req.valid("param");
  const job = await findJob(database(c.env), tenantOf(c.get("principal")), id);
  return jobImageResponse(c.env, c.req.raw, job, index);
});

jobRoutes.openapi(latents, async (c) => {
  const job = await findJob(database(c.env), tenantOf(c.get("principal")), c.req.valid("param").id);
  return jobLatentsResponse(c.env, c.req.raw, job);
});
