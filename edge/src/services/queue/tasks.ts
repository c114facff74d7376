/**
 * A task as the queue reads it, and who may act on it: only the holder of its current lease.
 * Every holder's transition is conditional on the task still being leased under that lease
 * (`heldUnder`), and the job-side steps of it on the state the transition left (`taskLeftIn`):
 * a holder whose lease expired and was taken again, or who released it, changes nothing.
 */
import { and, eq, exists, sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { tasks } from "../../db/schema.ts";
import { HttpProblem } from "../../problem.ts";

export type TaskRow = typeof tasks.$inferSelect;
export type TaskStatus = TaskRow["status"];

export type WorkerPrincipal = { tenantId: string; keyId: string };

/** What a holder presents: the task and the lease it was given. */
export type Lease = { taskId: string; leaseId: string };

export const jobOf = (task: TaskRow) => ({ id: task.jobId, tenantId: task.tenantId });

export async function loadTask(db: Db, tenantId: string, taskId: string): Promise<TaskRow> {
  const [task] = await db
    .select()
    .from(tasks)
    .where(and(eq(tasks.id, taskId), eq(tasks.tenantId, tenantId)))
    .limit(1);
  if (!task) throw new HttpProblem(404, "task-not-found", `No task ${taskId}.`);
  return task;
}

export function leaseLost(task: TaskRow): HttpProblem {
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
export function checkHolder(task: TaskRow, leaseId: string): void {
  if (task.status === "cancelled") {
    throw new HttpProblem(409, "job-cancelled", `The job of task ${task.id} was cancelled.`);
  }
  if (task.status !== "leased" || task.leaseId !== leaseId) throw leaseLost(task);
}

/** The task is leased under this lease: the condition of a holder's transition of its task. */
export function heldUnder(lease: Lease) {
  return and(
    eq(tasks.id, lease.taskId),
    eq(tasks.leaseId, lease.leaseId),
    eq(tasks.status, "leased"),
  );
}

/** The transition earlier in the batch left the task in `status` under this lease. */
export function taskLeftIn(db: Db, lease: Lease, status: TaskStatus) {
  return exists(
    db
      .select({ one: sql`1` })
      .from(tasks)
      .where(
        and(eq(tasks.id, lease.taskId), eq(tasks.leaseId, lease.leaseId), eq(tasks.status, status)),
      ),
  );
}
