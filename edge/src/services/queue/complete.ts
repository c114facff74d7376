/**
 * Completing a task: its outputs are checked (task-results.ts), then task, job, the job's
 * events and its webhook deliveries are written in one D1 batch guarded by the lease.
 * Idempotent: a repeat by the holder that completed it gets the same answer.
 */
import { type CompleteRequest, type CompleteResponse, TaskPayload } from "@revq/shared";
import { runTransition } from "../../db/batch.ts";
import { database } from "../../db/client.ts";
import { tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { isShardTask, settleParentOf } from "../jobs/dataset-encode.ts";
import { eventIfChanged } from "../jobs/events.ts";
import { openJobUpdate } from "../jobs/status.ts";
import { endingOutbox, sendDeliveries } from "../webhooks/outbox.ts";
import { checkTaskResult } from "./task-results.ts";
import {
  checkHolder,
  heldUnder,
  jobOf,
  leaseLost,
  loadTask,
  taskLeftIn,
  type WorkerPrincipal,
} from "./tasks.ts";

export async function completeTask(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: CompleteRequest,
): Promise<CompleteResponse> {
  const db = database(env);
  const task = await loadTask(db, worker.tenantId, taskId);
  const done: CompleteResponse = { taskId, jobId: task.jobId, status: "succeeded" };
  const completedByThisHolder = (t: typeof task) =>
    t.status === "succeeded" && t.leaseId === request.leaseId;
  if (completedByThisHolder(task)) return done;
  checkHolder(task, request.leaseId);
  const payload = TaskPayload.parse(task.payload);
  const result = await checkTaskResult(env, db, task.tenantId, payload, request.result);
  const now = Date.now();
  const lease = { taskId, leaseId: request.leaseId };
  // The progress stays: a finished job shows how far it got.
  const ending = { status: "succeeded", result } as const;
  const outbox = await endingOutbox(env, task.jobId, ending, now);
  const changed = await runTransition(db, {
    task: db.update(tasks).set({ status: "succeeded", updatedAt: now }).where(heldUnder(lease)),
    metrics: request.metrics
      ? eventIfChanged(db, jobOf(task), "metrics", request.metrics, now)
      : undefined,
    job: openJobUpdate(
      db,
      task.jobId,
      { ...ending, finishedAt: now, updatedAt: now },
      taskLeftIn(db, lease, "succeeded"),
    ),
    event: eventIfChanged(db, jobOf(task), "status", { status: "succeeded" }, now),
    deliveries: outbox.deliveries,
  });
  if (changed.task === 0) {
    const current = await loadTask(db, worker.tenantId, taskId);
    if (completedByThisHolder(current)) return done;
    checkHolder(current, request.leaseId);
    throw leaseLost(current);
  }
  if (changed.job > 0) {
    await sendDeliveries(env, outbox.deliveryIds);
    if (isShardTask(task)) await settleParentOf(env, task.jobId);
  }
  return done;
}
