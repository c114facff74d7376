/**
 * Leasing: one UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING. SQLite runs it alone, so
 * a queued task goes to exactly one caller; each lease gets its own random lease id. A call that
 * finds nothing long-polls.
 */
import {
  type LeasedTask,
  type LeaseRequest,
  type LeaseResponse,
  sleep,
  TaskPayload,
} from "@revq/shared";
import { and, eq, gt, inArray, lte, not, sql } from "drizzle-orm";
import type { Config } from "../../config.ts";
import { runTransitions } from "../../db/batch.ts";
import { database } from "../../db/client.ts";
import { tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { isoTime } from "../../schemas/common.ts";
import { eventIfChanged } from "../jobs/events.ts";
import { openJobUpdate } from "../jobs/status.ts";
import { grantInputs } from "../objects/grants.ts";
import { requeueExpired } from "./expiry.ts";
import { failTask } from "./fail.ts";
import { pollDelayMs } from "./lease-poll.ts";
import { jobOf, type TaskRow, type WorkerPrincipal } from "./tasks.ts";

/**
 * A named worker's call does not take back a task that worker gave up (released, failed, or let
 * expire) after the call began: such a call is one the worker has abandoned, and whose answer
 * nobody reads. The edge cannot always see that the client left (under wrangler dev an
 * abandoned long-poll runs to its end), and a stopping worker's own poll would otherwise take
 * back the task it had just released. A queued task's updated_at is when it was queued, and its
 * worker_name that of its last holder.
 */
function notGivenUpSince(worker: string | null, callStart: number) {
  if (worker === null) return undefined;
  return not(sql`(${tasks.workerName} IS ${worker} AND ${gt(tasks.updatedAt, callStart)})`);
}

/**
 * One atomic attempt to lease up to `max` ready tasks of the given kinds, for a lease call that
 * began at `callStart`; their jobs are running after it.
 */
async function takeTasks(
  env: Env,
  worker: WorkerPrincipal,
  request: LeaseRequest,
  config: Config,
  now: number,
  callStart: number,
): Promise<TaskRow[]> {
  const db = database(env);
  const name = request.worker ?? null;
  const ready = db
    .select({ id: tasks.id })
    .from(tasks)
    .where(
      and(
        eq(tasks.tenantId, worker.tenantId),
        eq(tasks.status, "queued"),
        lte(tasks.availableAt, now),
        inArray(tasks.kind, [...new Set(request.kinds)]),
        notGivenUpSince(name, callStart),
      ),
    )
    .orderBy(tasks.availableAt, tasks.id)
    .limit(request.max);
  const taken = await db
    .update(tasks)
    .set({
      status: "leased",
      attempt: sql`${tasks.attempt} + 1`,
      leaseId: sql`'lse_' || lower(hex(randomblob(16)))`,
      leaseExpiresAt: now + config.leaseSeconds * 1000,
      leasedBy: worker.keyId,
      workerName: name,
      updatedAt: now,
    })
    .where(inArray(tasks.id, ready))
    .returning();
  await runTransitions(
    db,
    taken.map((task) => ({
      job: openJobUpdate(db, task.jobId, { status: "running", updatedAt: now }),
      event: eventIfChanged(
        db,
        jobOf(task),
        "status",
        { status: "running", attempt: task.attempt, worker: name },
        now,
      ),
    })),
  );
  return taken.sort((a, b) => a.availableAt - b.availableAt || (a.id < b.id ? -1 : 1));
}

/**
 * The taken tasks with their payloads and the URLs of their first inputs. A payload this edge
 * cannot read (queued by an older release whose protocol differed) fails its job for good instead
 * of failing every lease call that would take it.
 */
async function leasable(
  env: Env,
  worker: WorkerPrincipal,
  taken: TaskRow[],
  config: Config,
  origin: string,
  now: number,
) {
  const readable: LeasedTask[] = [];
  for (const task of taken) {
    const leaseId = task.leaseId as string;
    const parsed = TaskPayload.safeParse(task.payload);
    if (parsed.success) {
      readable.push({
        taskId: task.id,
        jobId: task.jobId,
        kind: task.kind,
        attempt: task.attempt,
        maxAttempts: task.maxAttempts,
        leaseId,
        leaseExpiresAt: isoTime(task.leaseExpiresAt as number),
        payload: parsed.data,
        objects: await grantInputs(env, parsed.data, config, origin, now),
      });
      continue;
    }
    await failTask(env, worker, task.id, {
      leaseId,
      retryable: false,
      error: {
        code: "payload-unreadable",
        message: `The task was queued with a payload this edge cannot read (${parsed.error.issues[0]?.message}); create the job again.`,
      },
    });
  }
  return readable;
}

/** Leases ready tasks, long-polling up to the requested (and configured) wait if there are none. */
export async function leaseTasks(
  env: Env,
  worker: WorkerPrincipal,
  request: LeaseRequest,
  config: Config,
  origin: string,
): Promise<LeaseResponse> {
  const start = Date.now();
  const deadline = start + Math.min(request.waitSeconds, config.maxLeaseWaitSeconds) * 1000;
  for (let checks = 1; ; checks++) {
    const now = Date.now();
    await requeueExpired(env, now, worker.tenantId);
    const taken = await takeTasks(env, worker, request, config, now, start);
    const tasks = await leasable(env, worker, taken, config, origin, now);
    if (tasks.length > 0 || now >= deadline) return { leaseSeconds: config.leaseSeconds, tasks };
    await sleep(Math.min(pollDelayMs(checks), deadline - now));
  }
}
