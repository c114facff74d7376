/**
 * Job events, in order. Each is written in the same D1 batch as the change it records, guarded
 * so that the event exists exactly when the change happened (a repeated call that changes
 * nothing records nothing).
 */
import type { JobEvent } from "@revq/shared";
import type { SQL } from "drizzle-orm";
import { previousChanged } from "../../db/batch.ts";
import type { Db } from "../../db/client.ts";
import { insertWhere } from "../../db/insert-where.ts";
import { jobEvents } from "../../db/schema.ts";

export type EventType = (typeof jobEvents.$inferSelect)["type"];

type JobRef = { id: string; tenantId: string };

/** An event recorded only if `condition` holds when its statement runs. */
export function eventWhere(
  db: Db,
  job: JobRef,
  type: EventType,
  data: JobEvent["data"],
  now: number,
  condition: SQL,
) {
  return insertWhere(
    db,
    jobEvents,
    { jobId: job.id, tenantId: job.tenantId, type, data, createdAt: now },
    condition,
  );
}

/** An event recorded only if the statement just before it in the batch changed a row. */
export function eventIfChanged(
  db: Db,
  job: JobRef,
  type: EventType,
  data: JobEvent["data"],
  now: number,
) {
  return eventWhere(db, job, type, data, now, previousChanged);
}
