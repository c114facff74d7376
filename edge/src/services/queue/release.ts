/**
 * Hands a held task back unfinished (its worker is shutting down): queued again at once, in its
 * old place in line, and the lease it was taken with does not count as an attempt. The lease
 * ends, so its holder can no longer heartbeat, complete or fail.
 */
import type { ReleaseRequest, ReleaseResponse } from "@revq/shared";
import { sql } from "drizzle-orm";
import { runTransition } from "../../db/batch.ts";
import { database } from "../../db/client.ts";
import { tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { eventIfChanged } from "../jobs/events.ts";
import { openJobUpdate } from "../jobs/status.ts";
import {
  checkHolder,
  heldUnder,
  jobOf,
  leaseLost,
  loadTask,
  taskLeftIn,
  type WorkerPrincipal,
} from "./tasks.ts";

export async function releaseTask(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: ReleaseRequest,
): Promise<ReleaseResponse> {
  const db = database(env);
  const task = await loadTask(db, worker.tenantId, taskId);
  checkHolder(task, request.leaseId);
  const now = Date.now();
  const lease = { taskId, leaseId: request.leaseId };
  const changed = await runTransition(db, {
    task: db
      .update(tasks)
      .set({
        status: "queued",
        attempt: sql`${tasks.attempt} - 1`,
        leaseExpiresAt: null,
        updatedAt: now,
      })
      .where(heldUnder(lease)),
    job: openJobUpdate(
      db,
      task.jobId,
      { status: "queued", progress: null, updatedAt: now },
      taskLeftIn(db, lease, "queued"),
    ),
    event: eventIfChanged(
      db,
      jobOf(task),
      "status",
      { status: "queued", reason: "released", attempt: task.attempt, worker: task.workerName },
      now,
    ),
  });
  if (changed.task === 0) throw leaseLost(await loadTask(db, worker.tenantId, taskId));
  return { taskId, jobId: task.jobId, status: "queued" };
}
