/**
 * Expired leases: back to the queue, or failed when out of attempts. Swept on every lease call
 * for the caller's tenant and by cron for all.
 */
import { and, eq, lte } from "drizzle-orm";
import { previousChanged, runTransitions } from "../../db/batch.ts";
import { database } from "../../db/client.ts";
import { type JobError, tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { isShardTask, settleParentOf } from "../jobs/dataset-encode.ts";
import { eventIfChanged } from "../jobs/events.ts";
import { openJobUpdate } from "../jobs/status.ts";
import { EMPTY_OUTBOX, endingOutbox, sendDeliveries } from "../webhooks/outbox.ts";
import { jobOf, type TaskRow } from "./tasks.ts";

/** Expired leases one sweep ends at most: one D1 batch holds them all. */
const SWEEP_LIMIT = 50;

/**
 * Expired leases back to the queue, or failed when out of attempts; returns how many. Each task's
 * transition, its job's, the job's event and (for a failed job) its webhook deliveries are
 * written in one D1 batch, each statement only if the one before it changed a row: a crash
 * leaves all of them undone, for the next sweep, or all done. A sweep ends at most SWEEP_LIMIT;
 * the next one (the next lease call, the cron) the rest.
 */
export async function requeueExpired(env: Env, now: number, tenantId?: string): Promise<number> {
  const db = database(env);
  const expired = await db
    .select()
    .from(tasks)
    .where(
      and(
        eq(tasks.status, "leased"),
        lte(tasks.leaseExpiresAt, now),
        tenantId ? eq(tasks.tenantId, tenantId) : undefined,
      ),
    )
    .orderBy(tasks.leaseExpiresAt)
    .limit(SWEEP_LIMIT);
  const endings = await Promise.all(expired.map((task) => leaseExpiry(env, task, now)));
  const changes = await runTransitions(
    db,
    endings.map((ending) => ending.steps),
  );
  let ended = 0;
  for (const [i, changed] of changes.entries()) {
    if (changed.task === 0) continue; // renewed meanwhile
    ended++;
    if (changed.job === 0) continue;
    await sendDeliveries(env, endings[i].deliveryIds);
    // A shard job out of attempts fails its dataset encode job.
    const task = expired[i];
    if (isShardTask(task) && task.attempt >= task.maxAttempts) {
      await settleParentOf(env, task.jobId);
    }
  }
  return ended;
}

/** The steps that end one expired lease, each guarded by the one before it. */
async function leaseExpiry(env: Env, task: TaskRow, now: number) {
  const db = database(env);
  const failed = task.attempt >= task.maxAttempts;
  const error: JobError = {
    code: "lease-expired",
    message: `The worker's lease expired on attempt ${task.attempt} of ${task.maxAttempts}.`,
  };
  // The guard repeats lease id and expiry: a lease renewed since the read is left alone.
  const taskEnd = db
    .update(tasks)
    .set({
      status: failed ? "failed" : "queued",
      leaseExpiresAt: null,
      availableAt: now,
      updatedAt: now,
    })
    .where(
      and(
        eq(tasks.id, task.id),
        eq(tasks.leaseId, task.leaseId as string),
        eq(tasks.status, "leased"),
        lte(tasks.leaseExpiresAt, now),
      ),
    );
  const jobEnd = failed
    ? openJobUpdate(
        db,
        task.jobId,
        { status: "failed", error, finishedAt: now, updatedAt: now },
        previousChanged,
      )
    : openJobUpdate(db, task.jobId, { status: "queued", updatedAt: now }, previousChanged);
  const outbox = failed
    ? await endingOutbox(env, task.jobId, { status: "failed", error }, now)
    : EMPTY_OUTBOX;
  const event = eventIfChanged(
    db,
    jobOf(task),
    "status",
    failed
      ? { status: "failed", error }
      : { status: "queued", reason: "lease-expired", attempt: task.attempt },
    now,
  );
  return {
    steps: { task: taskEnd, job: jobEnd, event, deliveries: outbox.deliveries },
    deliveryIds: outbox.deliveryIds,
  };
}
