/** Jobs: create, read, list, cancel, and follow their events. */
import { createRoute, z } from "@hono/zod-openapi";
import { canonicalJson, sha256Hex } from "@revq/shared";
import { and, asc, eq, gt } from "drizzle-orm";
import { configOf } from "../config.ts";
import { database } from "../db/client.ts";
import { jobEvents } from "../db/schema.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { HttpProblem } from "../problem.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, isoTime, problems } from "../schemas/common.ts";
import { Job, JobCreate, JobEvent, JobList, JobStatus } from "../schemas/jobs.ts";
import { withIdempotency } from "../services/idempotency.ts";
import { cancelJob, createJob, findJob, findJobView, listJobs } from "../services/jobs.ts";
import { TOKEN_FORMATS, tokenResponse } from "../services/token-download.ts";

const security = bearerSecurity("apiKey");
const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });
const IdParams = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) });

const create = createRoute({
  method: "post",
  path: "/",
  tags: ["Jobs"],
  summary: "Create an encode, reconstruct or train job",
  description:
    "Checks every reference (tokenizer ready, images and source job of this tenant) and queues one task for a GPU worker. Honours `Idempotency-Key`.",
  security,
  request: {
    headers: z.object({ "idempotency-key": z.string().optional() }),
    body: { required: true, content: json(JobCreate) },
  },
  responses: {
    202: { description: "Queued", content: json(Job) },
    ...problems(400, 401, 403, 409, 422),
  },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["Jobs"],
  summary: "One job",
  security,
  request: { params: IdParams },
  responses: { 200: { description: "The job", content: json(Job) }, ...problems(401, 403, 404) },
});

const list = createRoute({
  method: "get",
  path: "/",
  tags: ["Jobs"],
  summary: "The tenant's jobs, newest first, a page at a time",
  security,
  request: {
    query: z.object({
      status: JobStatus.optional(),
      kind: z.enum(["encode", "reconstruct", "train"]).optional(),
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: z.string().optional(),
    }),
  },
  responses: { 200: { description: "A page", content: json(JobList) }, ...problems(400, 401, 403) },
});

const cancel = createRoute({
  method: "post",
  path: "/{id}/cancel",
  tags: ["Jobs"],
  summary: "Cancel a queued or running job (a repeat is harmless)",
  security,
  request: { params: IdParams },
  responses: {
    200: { description: "Cancelled", content: json(Job) },
    ...problems(401, 403, 404, 409),
  },
});

const events = createRoute({
  method: "get",
  path: "/{id}/events",
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
      content: json(z.object({ events: z.array(JobEvent), next: z.int().nullable() })),
    },
    ...problems(400, 401, 403, 404),
  },
});

const tokens = createRoute({
  method: "get",
  path: "/{id}/tokens",
  tags: ["Jobs"],
  summary: "A finished encode job's tokens: the token stream, or JSON, or .npy",
  description:
    "The binary form is the token stream of docs/token-stream.md (`application/vnd.revq.tokens`); a record is addressable with `Range` (record i is bytes 64 + i·stride to 64 + (i+1)·stride − 1, stride in `Revq-Record-Stride`). Strong ETag, `If-None-Match` → 304, `Cache-Control: immutable`.",
  security,
  request: {
    params: IdParams,
    query: z.object({ format: z.enum(TOKEN_FORMATS).default("binary") }),
    headers: z.object({
      range: z.string().optional().openapi({ example: "bytes=64-963" }),
      "if-none-match": z.string().optional(),
    }),
  },
  responses: {
    200: {
      description: "The tokens",
      content: {
        "application/vnd.revq.tokens": { schema: { type: "string", format: "binary" } },
        "application/json": { schema: { type: "object" } },
        "application/octet-stream": { schema: { type: "string", format: "binary" } },
      },
    },
    206: { description: "The requested byte range of the token stream" },
    304: { description: "Not modified" },
    ...problems(400, 401, 403, 404, 409),
  },
});

export const jobRoutes = newRouter();
jobRoutes.use("*", requireKey("api"));

jobRoutes.openapi(create, async (c) => {
  const tenantId = tenantOf(c.get("principal"));
  const body = c.req.valid("json");
  const db = database(c.env);
  const view = await withIdempotency(
    c,
    tenantId,
    await sha256Hex(canonicalJson(body)),
    async () => {
      const job = await createJob(db, configOf(c.env), tenantId, body);
      return findJobView(db, tenantId, job.id);
    },
  );
  c.header("location", `/v1/jobs/${view.id}`);
  return c.json(view, 202);
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
        data: JSON.parse(e.data),
        createdAt: isoTime(e.createdAt),
      })),
      next: rows.length > limit ? page[page.length - 1].id : null,
    },
    200,
  );
});

// Documented above and routed by hand: the answer is bytes (or JSON made from bytes), not a
// JSON value the route schema could type.
jobRoutes.openAPIRegistry.registerPath(tokens);
jobRoutes.get("/:id/tokens", async (c) => {
  const format = c.req.query("format") ?? "binary";
  if (!(TOKEN_FORMATS as readonly string[]).includes(format)) {
    throw new HttpProblem(
      400,
      "invalid-request",
      `format must be one of ${TOKEN_FORMATS.join(", ")}.`,
      {
        errors: [{ path: "query.format", message: `expected one of ${TOKEN_FORMATS.join(", ")}` }],
      },
    );
  }
  const job = await findJob(database(c.env), tenantOf(c.get("principal")), c.req.param("id"));
  return tokenResponse(
    c.env,
    (promise) => c.executionCtx.waitUntil(promise),
    c.req.raw,
    job,
    format as (typeof TOKEN_FORMATS)[number],
  );
});
