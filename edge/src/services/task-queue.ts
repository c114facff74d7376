/**
 * The pull queue GPU workers lease tasks from, on D1. Every transition is one conditional
 * statement (or one D1 batch, which is a transaction), so concurrent calls cannot both win:
 *
 * - lease: one UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING. SQLite runs it alone, so
 *   a queued task goes to exactly one caller; each lease gets its own random lease id.
 * - heartbeat / complete / fail / release: UPDATE ... WHERE lease_id = ? AND status = 'leased'. A
 *   holder whose lease expired and was taken again, or who released it, no longer matches and is
 *   refused (409).
 * - expiry: leases past their time go back to the queue (or fail, out of attempts), swept on
 *   every lease call for the caller's tenant and by cron for all.
 *
 * The job row follows its task in the same batch, guarded by the task's state, and so do the
 * webhook deliveries of a job's ending (webhooks.ts, endingOutbox).
 */
import {
  type CompleteRequest,
  type CompleteResponse,
  type FailRequest,
  type FailResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type LeasedTask,
  type LeaseRequest,
  type LeaseResponse,
  type ReleaseRequest,
  type ReleaseResponse,
  TaskPayload,
} from "@revq/shared";
import type { Config } from "../config.ts";
import { database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { isoTime } from "../schemas/common.ts";
import { eventIfChangedStatement } from "./job-events.ts";
import { retryDelayMs } from "./job-limits.ts";
import { pollDelayMs } from "./lease-poll.ts";
import { checkTaskResult } from "./task-results.ts";
import { EMPTY_OUTBOX, endingOutbox, sendDeliveries } from "./webhooks.ts";

export type TaskRecord = {
  id: string;
  job_id: string;
  tenant_id: string;
  kind: LeasedTask["kind"];
  status: "queued" | "leased" | "succeeded" | "failed" | "cancelled";
  payload: string;
  attempt: number;
  max_attempts: number;
  available_at: number;
  lease_id: string | null;
  lease_expires_at: number | null;
  worker_name: string | null;
};

export type WorkerPrincipal = { tenantId: string; keyId: string };

const jobOf = (task: TaskRecord) => ({ id: task.job_id, tenantId: task.tenant_id });

export async function loadTask(
  d1: D1Database,
  tenantId: string,
  taskId: string,
): Promise<TaskRecord> {
  const task = await d1
    .prepare("SELECT * FROM tasks WHERE id = ? AND tenant_id = ?")
    .bind(taskId, tenantId)
    .first<TaskRecord>();
  if (!task) throw new HttpProblem(404, "task-not-found", `No task ${taskId}.`);
  return task;
}

function leaseLost(task: TaskRecord): HttpProblem {
  const state =
    task.status === "leased"
      ? "leased under another lease"
      : task.status === "queued"
        ? "back in the queue"
        : task.status;
  return new HttpProblem(
    409,
    "lease-lost",
    `This lease on task ${task.id} is no longer valid: the task is ${state}.`,
  );
}

/** Refuses anyone but the current holder of a leased task. */
export function checkHolder(task: TaskRecord, leaseId: string): void {
  if (task.status === "cancelled") {
    throw new HttpProblem(409, "job-cancelled", `The job of task ${task.id} was cancelled.`);
  }
  if (task.status !== "leased" || task.lease_id !== leaseId) throw leaseLost(task);
}

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
  const d1 = env.DB;
  const { results: expired } = await d1
    .prepare(
      `SELECT * FROM tasks WHERE status = 'leased' AND lease_expires_at <= ?1 ${tenantId ? "AND tenant_id = ?2" : ""}
       ORDER BY lease_expires_at LIMIT ${SWEEP_LIMIT}`,
    )
    .bind(...(tenantId ? [now, tenantId] : [now]))
    .all<TaskRecord>();
  const endings = await Promise.all(expired.map((task) => leaseExpiry(env, task, now)));
  const statements = endings.flatMap((e) => e.statements);
  if (statements.length === 0) return 0;
  const outcomes = await d1.batch(statements);
  let ended = 0;
  for (const { taskEnd, jobEnd, outbox } of endings) {
    if (outcomes[statements.indexOf(taskEnd)].meta.changes === 0) continue; // renewed meanwhile
    ended++;
    if (outcomes[statements.indexOf(jobEnd)].meta.changes > 0) {
      await sendDeliveries(env, outbox.deliveryIds);
    }
  }
  return ended;
}

/** The statements that end one expired lease, each guarded by the one before it. */
async function leaseExpiry(env: Env, task: TaskRecord, now: number) {
  const d1 = env.DB;
  const failed = task.attempt >= task.max_attempts;
  const error = {
    code: "lease-expired",
    message: `The worker's lease expired on attempt ${task.attempt} of ${task.max_attempts}.`,
  };
  const taskEnd = d1
    .prepare(
      `UPDATE tasks SET status = ?1, lease_expires_at = NULL, available_at = ?2, updated_at = ?2
       WHERE id = ?3 AND lease_id = ?4 AND status = 'leased' AND lease_expires_at <= ?2`,
    )
    .bind(failed ? "failed" : "queued", now, task.id, task.lease_id);
  const jobEnd = failed
    ? d1
        .prepare(
          "UPDATE jobs SET status = 'failed', error = ?1, finished_at = ?2, updated_at = ?2 WHERE id = ?3 AND status IN ('queued', 'running') AND changes() > 0",
        )
        .bind(JSON.stringify(error), now, task.job_id)
    : d1
        .prepare(
          "UPDATE jobs SET status = 'queued', updated_at = ?1 WHERE id = ?2 AND status IN ('queued', 'running') AND changes() > 0",
        )
        .bind(now, task.job_id);
  const outbox = failed
    ? await endingOutbox(env, task.job_id, { status: "failed", error }, now)
    : EMPTY_OUTBOX;
  const event = eventIfChangedStatement(
    d1,
    jobOf(task),
    "status",
    failed
      ? { status: "failed", error }
      : { status: "queued", reason: "lease-expired", attempt: task.attempt },
    now,
  );
  return { taskEnd, jobEnd, outbox, statements: [taskEnd, jobEnd, event, ...outbox.statements] };
}

/**
 * One atomic attempt to lease up to `max` ready tasks of the given kinds, for a lease call that
 * began at `callStart`. A named worker's call does not take back a task that worker gave up
 * (released, failed, or let expire) after the call began: such a call is one the worker has
 * abandoned, and whose answer nobody reads. The edge cannot always see that the client left
 * (under wrangler dev an abandoned long-poll runs to its end), and a stopping worker's own poll
 * would otherwise take back the task it had just released. A queued task's updated_at is when
 * it was queued, and its worker_name that of its last holder.
 */
async function takeTasks(
  env: Env,
  worker: WorkerPrincipal,
  request: LeaseRequest,
  config: Config,
  now: number,
  callStart: number,
): Promise<TaskRecord[]> {
  const kinds = [...new Set(request.kinds)];
  const kindParams = kinds.map((_, i) => `?${i + 8}`).join(", ");
  const { results } = await env.DB.prepare(
    `UPDATE tasks SET status = 'leased', attempt = attempt + 1,
       lease_id = 'lse_' || lower(hex(randomblob(16))), lease_expires_at = ?1,
       leased_by = ?2, worker_name = ?3, updated_at = ?4
     WHERE id IN (
       SELECT id FROM tasks
       WHERE tenant_id = ?5 AND status = 'queued' AND available_at <= ?4 AND kind IN (${kindParams})
         AND NOT (?3 IS NOT NULL AND worker_name IS ?3 AND updated_at > ?7)
       ORDER BY available_at, id LIMIT ?6)
     RETURNING *`,
  )
    .bind(
      now + config.leaseSeconds * 1000,
      worker.keyId,
      request.worker ?? null,
      now,
      worker.tenantId,
      request.max,
      callStart,
      ...kinds,
    )
    .all<TaskRecord>();
  if (results.length > 0) {
    await env.DB.batch(
      results.flatMap((task) => [
        env.DB.prepare(
          "UPDATE jobs SET status = 'running', updated_at = ?1 WHERE id = ?2 AND status IN ('queued', 'running')",
        ).bind(now, task.job_id),
        eventIfChangedStatement(
          env.DB,
          jobOf(task),
          "status",
          { status: "running", attempt: task.attempt, worker: request.worker ?? null },
          now,
        ),
      ]),
    );
  }
  return results.sort((a, b) => a.available_at - b.available_at || (a.id < b.id ? -1 : 1));
}

/**
 * The taken tasks with their payloads. A payload this edge cannot read (queued by an older
 * release whose protocol differed) fails its job for good instead of failing every lease call
 * that would take it.
 */
async function leasable(env: Env, worker: WorkerPrincipal, taken: TaskRecord[]) {
  const readable: { task: TaskRecord; payload: TaskPayload }[] = [];
  for (const task of taken) {
    const parsed = TaskPayload.safeParse(JSON.parse(task.payload));
    if (parsed.success) {
      readable.push({ task, payload: parsed.data });
      continue;
    }
    await failTask(env, worker, task.id, {
      leaseId: task.lease_id as string,
      retryable: false,
      error: {
        code: "payload-unreadable",
        message: `The task was queued with a payload this edge cannot read (${parsed.error.issues[0]?.message}); create the job again.`,
      },
    });
  }
  return readable;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Leases ready tasks, long-polling up to the requested (and configured) wait if there are none. */
export async function leaseTasks(
  env: Env,
  worker: WorkerPrincipal,
  request: LeaseRequest,
  config: Config,
): Promise<LeaseResponse> {
  const start = Date.now();
  const deadline = start + Math.min(request.waitSeconds, config.maxLeaseWaitSeconds) * 1000;
  for (let checks = 1; ; checks++) {
    const now = Date.now();
    await requeueExpired(env, now, worker.tenantId);
    const taken = await leasable(
      env,
      worker,
      await takeTasks(env, worker, request, config, now, start),
    );
    if (taken.length > 0 || now >= deadline) {
      return {
        leaseSeconds: config.leaseSeconds,
        tasks: taken.map(({ task, payload }) => ({
          taskId: task.id,
          jobId: task.job_id,
          kind: task.kind,
          attempt: task.attempt,
          maxAttempts: task.max_attempts,
          leaseId: task.lease_id as string,
          leaseExpiresAt: isoTime(task.lease_expires_at as number),
          payload,
        })),
      };
    }
    await sleep(Math.min(pollDelayMs(checks), deadline - now));
  }
}

/** The job-side statement of a task transition: it applies only if the task is in `state` under this lease. */
const taskIs = "EXISTS (SELECT 1 FROM tasks WHERE id = ?9 AND lease_id = ?10 AND status = ?11)";

/** The job of a task that goes back to the queue (a retry, a release), guarded by `taskIs`. */
const jobBackInQueue = `UPDATE jobs SET status = 'queued', progress = NULL, updated_at = ?1 WHERE id = ?2 AND status IN ('queued', 'running') AND ${taskIs}`;

/**
 * Binds a statement guarded by `taskIs`: `values` fill ?1..?8, then the task, its lease and the
 * status the batch's first statement must have left it in fill ?9..?11.
 */
function leaseGuarded(d1: D1Database, taskId: string, leaseId: string, status: string) {
  return (sql: string, ...values: unknown[]) =>
    d1
      .prepare(sql)
      .bind(...values, ...Array(8 - values.length).fill(null), taskId, leaseId, status);
}

export async function heartbeat(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: HeartbeatRequest,
  config: Config,
): Promise<HeartbeatResponse> {
  const d1 = env.DB;
  const task = await loadTask(d1, worker.tenantId, taskId);
  if (task.status === "cancelled") return { cancelled: true, leaseExpiresAt: null };
  checkHolder(task, request.leaseId);
  const now = Date.now();
  const expires = now + config.leaseSeconds * 1000;
  const guard = leaseGuarded(d1, taskId, request.leaseId, "leased");
  const statements = [
    d1
      .prepare(
        "UPDATE tasks SET lease_expires_at = ?1, updated_at = ?2 WHERE id = ?3 AND lease_id = ?4 AND status = 'leased'",
      )
      .bind(expires, now, taskId, request.leaseId),
  ];
  if (request.progress) {
    statements.push(
      guard(
        `UPDATE jobs SET progress = ?1, updated_at = ?2 WHERE id = ?3 AND status IN ('queued', 'running') AND ${taskIs}`,
        JSON.stringify(request.progress),
        now,
        task.job_id,
      ),
    );
  }
  const events: [string, unknown][] = [];
  if (request.progress) events.push(["progress", request.progress]);
  if (request.metrics) events.push(["metrics", request.metrics]);
  if (request.message) events.push(["log", { message: request.message }]);
  for (const [type, data] of events) {
    statements.push(
      guard(
        `INSERT INTO job_events (job_id, tenant_id, type, data, created_at) SELECT ?1, ?2, ?3, ?4, ?5 WHERE ${taskIs}`,
        task.job_id,
        task.tenant_id,
        type,
        JSON.stringify(data),
        now,
      ),
    );
  }
  const [renewed] = await d1.batch(statements);
  if (renewed.meta.changes === 0) {
    // Cancelled or expired-and-taken between the read and the write.
    const current = await loadTask(d1, worker.tenantId, taskId);
    if (current.status === "cancelled") return { cancelled: true, leaseExpiresAt: null };
    throw leaseLost(current);
  }
  return { cancelled: false, leaseExpiresAt: isoTime(expires) };
}

export async function completeTask(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: CompleteRequest,
): Promise<CompleteResponse> {
  const d1 = env.DB;
  const task = await loadTask(d1, worker.tenantId, taskId);
  const done: CompleteResponse = { taskId, jobId: task.job_id, status: "succeeded" };
  // A repeat by the holder that completed it: harmless, same answer.
  if (task.status === "succeeded" && task.lease_id === request.leaseId) return done;
  checkHolder(task, request.leaseId);
  const payload = TaskPayload.parse(JSON.parse(task.payload));
  const result = await checkTaskResult(env, database(env), task.tenant_id, payload, request.result);
  const now = Date.now();
  const guard = leaseGuarded(d1, taskId, request.leaseId, "succeeded");
  const resultJson = JSON.stringify(result);
  const outbox = await endingOutbox(
    env,
    task.job_id,
    { status: "succeeded", result, progress: null },
    now,
  );
  const jobEnd = guard(
    `UPDATE jobs SET status = 'succeeded', result = ?1, progress = NULL, finished_at = ?2, updated_at = ?2
     WHERE id = ?3 AND status IN ('queued', 'running') AND ${taskIs}`,
    resultJson,
    now,
    task.job_id,
  );
  const statements = [
    d1
      .prepare(
        "UPDATE tasks SET status = 'succeeded', updated_at = ?1 WHERE id = ?2 AND lease_id = ?3 AND status = 'leased'",
      )
      .bind(now, taskId, request.leaseId),
    ...(request.metrics
      ? [eventIfChangedStatement(d1, jobOf(task), "metrics", request.metrics, now)]
      : []),
    jobEnd,
    eventIfChangedStatement(d1, jobOf(task), "status", { status: "succeeded" }, now),
    ...outbox.statements,
  ];
  const outcomes = await d1.batch(statements);
  if (outcomes[0].meta.changes === 0) {
    const current = await loadTask(d1, worker.tenantId, taskId);
    if (current.status === "succeeded" && current.lease_id === request.leaseId) return done;
    checkHolder(current, request.leaseId);
    throw leaseLost(current);
  }
  if (outcomes[statements.indexOf(jobEnd)].meta.changes > 0) {
    await sendDeliveries(env, outbox.deliveryIds);
  }
  return done;
}

export async function failTask(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: FailRequest,
): Promise<FailResponse> {
  const d1 = env.DB;
  const task = await loadTask(d1, worker.tenantId, taskId);
  checkHolder(task, request.leaseId);
  const now = Date.now();
  const retry = request.retryable && task.attempt < task.max_attempts;
  const retryAt = retry ? now + retryDelayMs(task.attempt) : null;
  const status = retry ? "queued" : "failed";
  const guard = leaseGuarded(d1, taskId, request.leaseId, status);
  const error = request.error;
  const outbox = retry
    ? EMPTY_OUTBOX
    : await endingOutbox(env, task.job_id, { status: "failed", error, progress: null }, now);
  const [released, jobChange] = await d1.batch([
    d1
      .prepare(
        "UPDATE tasks SET status = ?1, available_at = ?2, lease_expires_at = NULL, updated_at = ?3 WHERE id = ?4 AND lease_id = ?5 AND status = 'leased'",
      )
      .bind(status, retryAt ?? now, now, taskId, request.leaseId),
    retry
      ? guard(jobBackInQueue, now, task.job_id)
      : guard(
          `UPDATE jobs SET status = 'failed', error = ?1, progress = NULL, finished_at = ?2, updated_at = ?2
           WHERE id = ?3 AND status IN ('queued', 'running') AND ${taskIs}`,
          JSON.stringify(error),
          now,
          task.job_id,
        ),
    eventIfChangedStatement(
      d1,
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
    ...outbox.statements,
  ]);
  if (released.meta.changes === 0) throw leaseLost(await loadTask(d1, worker.tenantId, taskId));
  if (jobChange.meta.changes > 0) await sendDeliveries(env, outbox.deliveryIds);
  return {
    taskId,
    jobId: task.job_id,
    status,
    attempt: task.attempt,
    retryAt: retryAt === null ? null : isoTime(retryAt),
  };
}

/**
 * Hands a held task back unfinished (its worker is shutting down): queued again at once, in its
 * old place in line, and the lease it was taken with does not count as an attempt. The lease
 * ends, so its holder can no longer heartbeat, complete or fail.
 */
export async function releaseTask(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: ReleaseRequest,
): Promise<ReleaseResponse> {
  const d1 = env.DB;
  const task = await loadTask(d1, worker.tenantId, taskId);
  checkHolder(task, request.leaseId);
  const now = Date.now();
  const guard = leaseGuarded(d1, taskId, request.leaseId, "queued");
  const [released] = await d1.batch([
    d1
      .prepare(
        "UPDATE tasks SET status = 'queued', attempt = attempt - 1, lease_expires_at = NULL, updated_at = ?1 WHERE id = ?2 AND lease_id = ?3 AND status = 'leased'",
      )
      .bind(now, taskId, request.leaseId),
    guard(jobBackInQueue, now, task.job_id),
    eventIfChangedStatement(
      d1,
      jobOf(task),
      "status",
      { status: "queued", reason: "released", attempt: task.attempt, worker: task.worker_name },
      now,
    ),
  ]);
  if (released.meta.changes === 0) throw leaseLost(await loadTask(d1, worker.tenantId, taskId));
  return { taskId, jobId: task.job_id, status: "queued" };
}
