/**
 * Cancelling a job: it, its task, its event and its webhook deliveries (and its unfinished child
 * jobs: a train job's extract jobs, a dataset encode job's shard jobs) in one D1 batch, each step
 * only if the job was still open.
 */
import { FINISHED_JOB_STATUSES, type JobStatus } from "@revq/shared";
import { and, eq, exists, inArray, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import { runTransitions, type Write } from "../../db/batch.ts";
import type { Db } from "../../db/client.ts";
import { jobs, tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";
import { endingOutbox, sendDeliveries } from "../webhooks/outbox.ts";
import { settleParentOf } from "./dataset-encode.ts";
import { eventIfChanged } from "./events.ts";
import { findJob, findJobView } from "./read.ts";
import { OPEN_STATUSES, openJobUpdate } from "./status.ts";

/** The job is in one of `statuses`, after the statements earlier in the batch. */
function jobIn(db: Db, jobId: string, statuses: readonly JobStatus[]) {
  const job = alias(jobs, "ended_job");
  return exists(
    db
      .select({ one: sql`1` })
      .from(job)
      .where(and(eq(job.id, jobId), inArray(job.status, [...statuses]))),
  );
}

type JobRef = { id: string; tenantId: string };
type CancelReason = "parent-cancelled" | "parent-failed";

/**
 * Cancels a job and its task if it is open, with the deliveries of its ending right after its
 * status event. A child job ends with its parent: `parent` then guards it on the parent having
 * ended earlier in the batch (or before it).
 */
function cancelSteps(
  db: Db,
  job: JobRef,
  now: number,
  deliveries: Write[],
  parent?: { id: string; reason: CancelReason },
) {
  return {
    job: openJobUpdate(
      db,
      job.id,
      { status: "cancelled", finishedAt: now, updatedAt: now },
      parent ? jobIn(db, parent.id, FINISHED_JOB_STATUSES) : undefined,
    ),
    event: eventIfChanged(
      db,
      job,
      "status",
      parent ? { status: "cancelled", reason: parent.reason } : { status: "cancelled" },
      now,
    ),
    deliveries,
    task: db
      .update(tasks)
      .set({ status: "cancelled", updatedAt: now })
      .where(
        and(
          eq(tasks.jobId, job.id),
          inArray(tasks.status, ["queued", "leased"]),
          jobIn(db, job.id, ["cancelled"]),
        ),
      ),
  };
}

/** Cancels an open child job of a parent that has ended (cancelled, or failed for a shard). */
export function childCancelSteps(
  db: Db,
  child: JobRef,
  now: number,
  parentId: string,
  reason: CancelReason,
) {
  return cancelSteps(db, child, now, [], { id: parentId, reason });
}

/**
 * Cancels an open job and its task (and its unfinished child jobs); a worker holding a task
 * learns it at its next heartbeat. The batch that cancels a job writes its webhook deliveries; a
 * repeat changes nothing and sends nothing. A shard job cancelled alone fails its dataset encode
 * job, which cannot be whole without it.
 */
export async function cancelJob(env: Env, db: Db, tenantId: string, id: string) {
  const job = await findJob(db, tenantId, id);
  if (job.status === "cancelled") return findJobView(db, tenantId, id);
  if (!OPEN_STATUSES.includes(job.status)) {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${job.status}.`);
  }
  const children = await db
    .select({ id: jobs.id, tenantId: jobs.tenantId })
    .from(jobs)
    .where(and(eq(jobs.parentJobId, id), inArray(jobs.status, OPEN_STATUSES)));
  const now = Date.now();
  // Child jobs end with their parent, which is the one event.
  const outbox = await endingOutbox(env, job.id, { status: "cancelled" }, now);
  const [own] = await runTransitions(db, [
    cancelSteps(db, job, now, outbox.deliveries),
    ...children.map((each) => childCancelSteps(db, each, now, job.id, "parent-cancelled")),
  ]);
  if (own.job > 0) await sendDeliveries(env, outbox.deliveryIds);
  if (own.job > 0 && job.parentJobId !== null) await settleParentOf(env, job.id);
  const after = await findJobView(db, tenantId, id);
  if (after.status !== "cancelled") {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${after.status}.`);
  }
  return after;
}
