/**
 * The worker API: GPU workers lease tasks and report on them. Worker keys only. The schemas are
 * shared's (the worker validates with them too); they appear inline in the OpenAPI document
 * because naming them would need zod-openapi's extension on shared's zod instances.
 */
import { createRoute, z } from "@hono/zod-openapi";
import {
  CompleteRequest,
  CompleteResponse,
  FailRequest,
  FailResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaseRequest,
  LeaseResponse,
  ObjectsRequest,
  ObjectsResponse,
  ReleaseRequest,
  ReleaseResponse,
} from "@revq/shared";
import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { configOf } from "../config.ts";
import { requireKey } from "../middleware/auth.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, json, problems } from "../schemas/common.ts";
import { at, ids, leasedTask, tokensGrant } from "../schemas/examples.ts";
import { grantObjects } from "../services/objects/grants.ts";
import { completeTask } from "../services/queue/complete.ts";
import { failTask } from "../services/queue/fail.ts";
import { heartbeat } from "../services/queue/heartbeat.ts";
import { leaseTasks } from "../services/queue/lease.ts";
import { releaseTask } from "../services/queue/release.ts";
import type { WorkerPrincipal } from "../services/queue/tasks.ts";

const security = bearerSecurity("workerKey");
const TaskParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.task }),
});
const task = { taskId: ids.task, jobId: ids.job };
const leaseId = ids.lease;

const lease = createRoute({
  method: "post",
  path: "/lease",
  operationId: "leaseTasks",
  tags: ["Worker"],
  summary: "Lease up to `max` ready tasks of the given kinds, waiting up to `waitSeconds` for one",
  security,
  request: {
    body: {
      required: true,
      content: json(LeaseRequest, {
        kinds: ["encode", "reconstruct"],
        max: 1,
        waitSeconds: 20,
        worker: "gpu-worker-1",
      }),
    },
  },
  responses: {
    200: {
      description: "The leased tasks (possibly none)",
      content: json(LeaseResponse, { tasks: [leasedTask], leaseSeconds: 60 }),
    },
    ...problems(400, 401, 403),
  },
});

const beat = createRoute({
  method: "post",
  path: "/tasks/{id}/heartbeat",
  operationId: "heartbeatTask",
  tags: ["Worker"],
  summary: "Renew the lease, report progress and metrics; says whether the job was cancelled",
  security,
  request: {
    params: TaskParams,
    body: {
      required: true,
      content: json(HeartbeatRequest, {
        leaseId,
        progress: { done: 1, total: 2, stage: "encode", etaSeconds: 1.5 },
        metrics: { imagesPerSecond: 0.8 },
      }),
    },
  },
  responses: {
    200: {
      description: "Renewed, or cancelled",
      content: json(HeartbeatResponse, { cancelled: false, leaseExpiresAt: at("10:01:03") }),
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

const complete = createRoute({
  method: "post",
  path: "/tasks/{id}/complete",
  operationId: "completeTask",
  tags: ["Worker"],
  summary: "Finish the task; its outputs are checked first. A repeat by the same lease is harmless",
  security,
  request: {
    params: TaskParams,
    body: {
      required: true,
      content: json(CompleteRequest, {
        leaseId,
        result: { kind: "encode" },
        metrics: { imagesPerSecond: 0.7 },
      }),
    },
  },
  responses: {
    200: {
      description: "Succeeded",
      content: json(CompleteResponse, { ...task, status: "succeeded" }),
    },
    ...problems(400, 401, 403, 404, 409, 422),
  },
});

const fail = createRoute({
  method: "post",
  path: "/tasks/{id}/fail",
  operationId: "failTask",
  tags: ["Worker"],
  summary:
    "Give the task up: retried later with backoff if retryable and attempts remain, else failed",
  security,
  request: {
    params: TaskParams,
    body: {
      required: true,
      content: json(FailRequest, {
        leaseId,
        retryable: true,
        error: { code: "out-of-memory", message: "CUDA out of memory while encoding a batch of 2" },
      }),
    },
  },
  responses: {
    200: {
      description: "Queued again or failed",
      content: json(FailResponse, {
        ...task,
        status: "queued",
        attempt: 1,
        retryAt: at("10:00:33"),
      }),
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

const release = createRoute({
  method: "post",
  path: "/tasks/{id}/release",
  operationId: "releaseTask",
  tags: ["Worker"],
  summary:
    "Hand the task back unfinished (shutting down): queued again at once, the attempt not counted",
  security,
  request: {
    params: TaskParams,
    body: { required: true, content: json(ReleaseRequest, { leaseId }) },
  },
  responses: {
    200: {
      description: "Queued again",
      content: json(ReleaseResponse, { ...task, status: "queued" }),
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

const objects = createRoute({
  method: "post",
  path: "/tasks/{id}/objects",
  operationId: "grantTaskObjects",
  tags: ["Worker"],
  summary:
    "Presigned bucket URLs for objects the task's payload names (a worker holds no bucket credential)",
  security,
  request: {
    params: TaskParams,
    body: {
      required: true,
      content: json(ObjectsRequest, { leaseId, objects: [tokensGrant.request] }),
    },
  },
  responses: {
    200: {
      description: "One URL per object, in order",
      content: json(ObjectsResponse, { objects: [tokensGrant.granted] }),
    },
    ...problems(400, 401, 403, 404, 409, 503),
  },
});

function workerOf(c: Context<AppEnv>): WorkerPrincipal {
  const principal = c.get("principal");
  if (principal.kind !== "worker") throw new Error("worker route without a worker key");
  return { tenantId: principal.tenantId, keyId: principal.keyId };
}

export const workerRoutes = newRouter();
workerRoutes.use("*", requireKey("worker"));

workerRoutes.openapi(lease, async (c) =>
  c.json(
    await leaseTasks(
      c.env,
      workerOf(c),
      c.req.valid("json"),
      configOf(c.env),
      new URL(c.req.url).origin,
    ),
    200,
  ),
);

workerRoutes.openapi(beat, async (c) =>
  c.json(
    await heartbeat(
      c.env,
      workerOf(c),
      c.req.valid("param").id,
      c.req.valid("json"),
      configOf(c.env),
    ),
    200,
  ),
);

workerRoutes.openapi(objects, async (c) =>
  c.json(
    await grantObjects(
      c.env,
      workerOf(c),
      c.req.valid("param").id,
      c.req.valid("json"),
      configOf(c.env),
      new URL(c.req.url).origin,
    ),
    200,
  ),
);

workerRoutes.openapi(complete, async (c) =>
  c.json(await completeTask(c.env, workerOf(c), c.req.valid("param").id, c.req.valid("json")), 200),
);

workerRoutes.openapi(fail, async (c) =>
  c.json(await failTask(c.env, workerOf(c), c.req.valid("param").id, c.req.valid("json")), 200),
);

workerRoutes.openapi(release, async (c) =>
  c.json(await releaseTask(c.env, workerOf(c), c.req.valid("param").id, c.req.valid("json")), 200),
);
