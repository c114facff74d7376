/** A job's status moves only while it is open: every change to it is guarded so. */
import type { JobStatus } from "@revq/shared";
import { and, eq, inArray, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { jobs } from "../../db/schema.ts";

export const OPEN_STATUSES: JobStatus[] = ["queued", "running"];

/** An UPDATE of the job if it is still open and `guard` holds (the transition's condition). */
export function openJobUpdate(
  db: Db,
  jobId: string,
  set: Partial<typeof jobs.$inferInsert>,
  guard?: SQL,
) {
  return db
    .update(jobs)
    .set(set)
    .where(and(eq(jobs.id, jobId), inArray(jobs.status, OPEN_STATUSES), guard));
}
