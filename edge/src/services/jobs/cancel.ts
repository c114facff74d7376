/**
 * Cancelling a job: it, its task, its event and its webhook deliveries (and a train job's
 * unfinished extract jobs) in one D1 batch, each step only if the job was still open.
 */
import { and, eq, exists, inArray, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import { runTransitions, type Write } from "../../db/batch.ts";
import type { Db } from "../../db/client.ts";
import { jobs, tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";
import { endingOutbox, sendDeliveries } from "../webhooks/outbox.ts";
import { eventIfChanged } from "./events.ts";
import { findJob, findJobView } from "./read.ts";
import { OPEN_STATUSES, openJobUpdate } from "./status.ts";

/** The job was cancelled, earlier in the batch. */
function cancelled(db: Db, jobId: string) {
  const job = alias(jobs, "cancelled_job");
  return exists(
    db
      .select({ one: sql`1` })
      .from(job)
      .where(and(eq(job.id, jobId), eq(job.status, "cancelled"))),
  );
}

/**
 * Cancels a job and its task if it is open, with the deliveries of its ending right after its
 * status event. An extract job is cancelled with its train job: `parentId` then guards it on the
 * train job having been cancelled earlier in the batch.
 */
function cancelSteps(
  db: Db,
  job: { id: string; tenantId: string },
  now: number,
  deliveries: Write[],
  parentId?: string,
) {
  return {
    job: openJobUpdate(
      db,
      job.id,
      { status: "cancelled", finishedAt: now, updatedAt: now },
      parentId ? cancelled(db, parentId) : undefined,
    ),
    event: eventIfChanged(
      db,
      job,
      "status",
      parentId ? { status: "cancelled", reason: "parent-cancelled" } : { status: "cancelled" },
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
          cancelled(db, job.id),
        ),
      ),
  };
}

/**
 * Cancels an open job and its task (and a train job's unfinished extract jobs); a worker holding
 * a task learns it at its next heartbeat. The batch that cancels a job writes its webhook
 * deliveries; a repeat changes nothing and sends nothing.
 */
export async function cancelJob(env: Env, db: Db, tenantId: string, id: string) {
  const job = await findJob(db, tenantId, id);
  if (job.status === "cancelled") return findJobView(db, tenantId, id);
  if (!OPEN_STATUSES.includes(job.status)) {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${job.status}.`);
  }
  const extractJobs =
    job.kind === "train"
      ? await db
          .select({ id: jobs.id, tenantId: jobs.tenantId })
          .from(jobs)
          .where(and(eq(jobs.parentJobId, id), inArray(jobs.status, OPEN_STATUSES)))
      : [];
  const now = Date.now();
  // Extract jobs end with their train job, which is the one event.
  const outbox = await endingOutbox(env, job.id, { status: "cancelled" }, now);
  const [own] = await runTransitions(db, [
    cancelSteps(db, job, now, outbox.deliveries),
    ...extractJobs.map((each) => cancelSteps(db, each, now, [], job.id)),
  ]);
  if (own.job > 0) await sendDeliveries(env, outbox.deliveryIds);
  const after = await findJobView(db, tenantId, id);
  if (after.status !== "cancelled") {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${after.status}.`);
  }
  return after;
}
