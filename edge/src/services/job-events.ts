/**
 * Job events, in order. Status changes are written in the same D1 batch as the change itself,
 * guarded by SQLite's changes() so that an event exists exactly when its update happened (a
 * repeated call that changes nothing records nothing).
 */
import type { jobEvents } from "../db/schema.ts";

export type EventType = (typeof jobEvents.$inferSelect)["type"];

const INSERT = "INSERT INTO job_events (job_id, tenant_id, type, data, created_at)";

/** An event for a job, recorded unconditionally. */
export function eventStatement(
  d1: D1Database,
  job: { id: string; tenantId: string },
  type: EventType,
  data: unknown,
  now: number,
): D1PreparedStatement {
  return bindEvent(d1.prepare(`${INSERT} VALUES (?, ?, ?, ?, ?)`), job, type, data, now);
}

/** An event recorded only if the statement just before it in the batch changed a row. */
export function eventIfChangedStatement(
  d1: D1Database,
  job: { id: string; tenantId: string },
  type: EventType,
  data: unknown,
  now: number,
): D1PreparedStatement {
  const sql = `${INSERT} SELECT ?, ?, ?, ?, ? WHERE changes() > 0`;
  return bindEvent(d1.prepare(sql), job, type, data, now);
}

function bindEvent(
  statement: D1PreparedStatement,
  job: { id: string; tenantId: string },
  type: EventType,
  data: unknown,
  now: number,
): D1PreparedStatement {
  return statement.bind(job.id, job.tenantId, type, JSON.stringify(data), now);
}
