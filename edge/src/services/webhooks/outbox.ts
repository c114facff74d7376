/**
 * When a job ends (succeeds, fails or is cancelled): one delivery per target (each subscribed
 * endpoint of the tenant, and the job's own URL), written in the batch that ends the job, and
 * queued once that batch committed.
 */
import { endingEvent } from "@revq/shared";
import { eq } from "drizzle-orm";
import { previousChanged, type Write } from "../../db/batch.ts";
import { database } from "../../db/client.ts";
import { insertWhere } from "../../db/insert-where.ts";
import { jobs, tasks, webhookDeliveries, webhookEndpoints } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { newId } from "../ids.ts";
import { JOB_VIEW_COLUMNS, jobView } from "../jobs/view.ts";
import { type DeliveryRow, enqueue } from "./deliveries.ts";

type JobRow = typeof jobs.$inferSelect;

/** The statuses a job ends in, each an event (`job.<status>`, `training.<status>`). */
const ENDED = ["succeeded", "failed", "cancelled"] as const;

/** How a job ends: its status and what its UPDATE sets besides finished_at and updated_at. */
export type JobEnding = { status: (typeof ENDED)[number] } & Partial<
  Pick<JobRow, "result" | "error" | "progress">
>;

/** The delivery rows of a job's ending, and their ids, to send once the batch committed. */
export type Outbox = { deliveries: Write[]; deliveryIds: string[] };
export const EMPTY_OUTBOX: Outbox = { deliveries: [], deliveryIds: [] };

/**
 * The deliveries of a job's ending, written in the batch that ends it (an outbox), so that no
 * crash or failed call can come between the end and its event. They go right after the
 * statement that records the status event: each is inserted only if the statement before it
 * changed a row, so they exist exactly when the job ended in that batch, never on a repeat.
 * The payload is the job as that batch leaves it.
 */
export async function endingOutbox(
  env: Env,
  jobId: string,
  ending: JobEnding,
  now: number,
): Promise<Outbox> {
  const db = database(env);
  const [row] = await db
    .select(JOB_VIEW_COLUMNS)
    .from(jobs)
    .leftJoin(tasks, eq(tasks.jobId, jobs.id))
    .where(eq(jobs.id, jobId))
    .limit(1);
  // A child job (an extract or shard job) only helps its parent, whose own ending is what a
  // tenant hears about.
  if (!row || row.job.parentJobId !== null) return EMPTY_OUTBOX;
  const job: JobRow = { ...row.job, ...ending, finishedAt: now, updatedAt: now };
  const type = endingEvent(job.kind, ending.status);
  const payload = JSON.stringify({
    type,
    timestamp: new Date(now).toISOString(),
    data: { job: jobView({ ...row, job }) },
  });
  const messageId = `msg_${job.id.slice(4)}_${ending.status}`;
  const endpoints = await db
    .select()
    .from(webhookEndpoints)
    .where(eq(webhookEndpoints.tenantId, job.tenantId));
  const targets = endpoints
    .filter((e) => e.events.includes(type))
    .map((e) => ({ endpointId: e.id as string | null, url: e.url }));
  if (job.webhookUrl) targets.push({ endpointId: null, url: job.webhookUrl });
  const rows: DeliveryRow[] = targets.map((t) => ({
    id: newId("dlv", now),
    tenantId: job.tenantId,
    endpointId: t.endpointId,
    jobId: job.id,
    url: t.url,
    messageId,
    eventType: type,
    payload,
    status: "pending",
    attempts: 0,
    nextAttemptAt: now,
    sendFailedAt: null,
    createdAt: now,
    updatedAt: now,
  }));
  return {
    deliveries: rows.map((row) => insertWhere(db, webhookDeliveries, row, previousChanged)),
    deliveryIds: rows.map((row) => row.id),
  };
}

/**
 * Queues the deliveries an ending wrote, once its batch committed. A failure here is logged and
 * neither undoes nor fails the ending: the rows are pending, so the sweep sends them (within a
 * minute when the failure could be marked, as lost deliveries after LOST_AFTER_MS when not).
 */
export async function sendDeliveries(env: Env, deliveryIds: string[]): Promise<void> {
  try {
    await enqueue(
      env,
      database(env),
      deliveryIds.map((deliveryId) => ({ deliveryId, delaySeconds: 0 })),
    );
  } catch (error) {
    console.error(`queueing webhook deliveries ${deliveryIds.join(", ")}:`, error);
  }
}
