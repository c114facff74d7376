/**
 * A heartbeat renews its holder's lease and records what the worker reports (progress, metrics,
 * a message), all in one D1 batch that changes nothing unless the lease is still held.
 */
import type { HeartbeatRequest, HeartbeatResponse, JobEvent } from "@revq/shared";
import type { Config } from "../../config.ts";
import { runTransition } from "../../db/batch.ts";
import { database } from "../../db/client.ts";
import { tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { isoTime } from "../../schemas/common.ts";
import { type EventType, eventWhere } from "../jobs/events.ts";
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

export async function heartbeat(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: HeartbeatRequest,
  config: Config,
): Promise<HeartbeatResponse> {
  const db = database(env);
  const task = await loadTask(db, worker.tenantId, taskId);
  if (task.status === "cancelled") return { cancelled: true, leaseExpiresAt: null };
  checkHolder(task, request.leaseId);
  const now = Date.now();
  const expires = now + config.leaseSeconds * 1000;
  const lease = { taskId, leaseId: request.leaseId };
  const stillHeld = taskLeftIn(db, lease, "leased");
  const reports: [EventType, JobEvent["data"]][] = [];
  if (request.progress) reports.push(["progress", request.progress]);
  if (request.metrics) reports.push(["metrics", request.metrics]);
  if (request.message) reports.push(["log", { message: request.message }]);
  const changed = await runTransition(db, {
    renewal: db
      .update(tasks)
      .set({ leaseExpiresAt: expires, updatedAt: now })
      .where(heldUnder(lease)),
    progress: request.progress
      ? openJobUpdate(db, task.jobId, { progress: request.progress, updatedAt: now }, stillHeld)
      : undefined,
    events: reports.map(([type, data]) => eventWhere(db, jobOf(task), type, data, now, stillHeld)),
  });
  if (changed.renewal === 0) {
    // Cancelled or expired-and-taken between the read and the write.
    const current = await loadTask(db, worker.tenantId, taskId);
    if (current.status === "cancelled") return { cancelled: true, leaseExpiresAt: null };
    throw leaseLost(current);
  }
  return { cancelled: false, leaseExpiresAt: isoTime(expires) };
}
