/**
 * A holder's failure: queued again after a backoff while it is retryable and attempts remain,
 * else the job fails, with its webhook deliveries in the same D1 batch.
 */
import type { FailRequest, FailResponse } from "@revq/shared";
import { runTransition } from "../../db/batch.ts";
import { database } from "../../db/client.ts";
import { tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { isoTime } from "../../schemas/common.ts";
import { retryDelayMs } from "../job-limits.ts";
import { isShardTask, settleParentOf } from "../jobs/dataset-encode.ts";
import { eventIfChanged } from "../jobs/events.ts";
import { openJobUpdate } from "../jobs/status.ts";
import { EMPTY_OUTBOX, endingOutbox, sendDeliveries } from "../webhooks/outbox.ts";
import {
  checkHolder,
  heldUnder,
  jobOf,
  leaseLost,
  loadTask,
  taskLeftIn,
  type WorkerPrincipal,
} from "./tasks.ts";

export async function failTask(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: FailRequest,
): Promise<FailResponse> {
  const db = database(env);
  const task = await loadTask(db, worker.tenantId, taskId);
  checkHolder(task, request.leaseId);
  const now = Date.now();
  const retry = request.retryable && task.attempt < task.maxAttempts;
  const retryAt = retry ? now + retryDelayMs(task.attempt) : null;
  const status = retry ? "queued" : "failed";
  const lease = { taskId, leaseId: request.leaseId };
  const left = taskLeftIn(db, lease, status);
  const { error } = request;
  // The progress stays: a failed job shows how far it got (a retry starts it afresh).
  const ending = { status: "failed", error } as const;
  const outbox = retry ? EMPTY_OUTBOX : await endingOutbox(env, task.jobId, ending, now);
  const changed = await runTransition(db, {
    task: db
      .update(tasks)
      .set({ status, availableAt: retryAt ?? now, leaseExpiresAt: null, updatedAt: now })
      .where(heldUnder(lease)),
    job: retry
      ? openJobUpdate(db, task.jobId, { status: "queued", progress: null, updatedAt: now }, left)
      : openJobUpdate(db, task.jobId, { ...ending, finishedAt: now, updatedAt: now }, left),
    event: eventIfChanged(
      db,
      jobOf(task),
      "status",
      retry
        ? {
            status: "queued",
            reason: "retry",
            attempt: task.attempt,
            retryAt: isoTime(retryAt as number),
            error,
          }
        : { status: "failed", attempt: task.attempt, error },
      now,
    ),
    deliveries: outbox.deliveries,
  });
  if (changed.task === 0) throw leaseLost(await loadTask(db, worker.tenantId, taskId));
  if (changed.job > 0) await sendDeliveries(env, outbox.deliveryIds);
  // A shard job that failed for good fails its dataset encode job.
  if (changed.job > 0 && !retry && isShardTask(task)) await settleParentOf(env, task.jobId);
  return {
    taskId,
    jobId: task.jobId,
    status,
    attempt: task.attempt,
    retryAt: retryAt === null ? null : isoTime(retryAt),
  };
}
