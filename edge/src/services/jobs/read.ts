/** Jobs as clients read them: one, or a page of the tenant's with cursor pagination. */
import type { JobStatus } from "@revq/shared";
import { and, desc, eq, lt } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { jobs, tasks } from "../../db/schema.ts";
import { HttpProblem } from "../../problem.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import { JOB_VIEW_COLUMNS, jobView } from "./view.ts";

export type JobRow = typeof jobs.$inferSelect;

export async function findJob(db: Db, tenantId: string, id: string): Promise<JobRow> {
  const [row] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "job-not-found", `No job ${id}.`);
  return row;
}

/** A job with the attempts of its task, as the API shows it. */
export async function findJobView(db: Db, tenantId: string, id: string) {
  const [row] = await db
    .select(JOB_VIEW_COLUMNS)
    .from(jobs)
    .leftJoin(tasks, eq(tasks.jobId, jobs.id))
    .where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "job-not-found", `No job ${id}.`);
  return jobView(row);
}

export type JobFilter = {
  status?: JobStatus;
  kind?: JobRow["kind"];
  limit: number;
  cursor?: string;
};

/** A page of the tenant's jobs, newest first. */
export async function listJobs(db: Db, tenantId: string, filter: JobFilter) {
  const conditions = [eq(jobs.tenantId, tenantId)];
  if (filter.status) conditions.push(eq(jobs.status, filter.status));
  if (filter.kind) conditions.push(eq(jobs.kind, filter.kind));
  if (filter.cursor) conditions.push(lt(jobs.id, decodeCursor(filter.cursor)));
  const rows = await db
    .select(JOB_VIEW_COLUMNS)
    .from(jobs)
    .leftJoin(tasks, eq(tasks.jobId, jobs.id))
    .where(and(...conditions))
    .orderBy(desc(jobs.id))
    .limit(filter.limit + 1);
  const page = rows.slice(0, filter.limit);
  return {
    jobs: page.map(jobView),
    nextCursor: rows.length > filter.limit ? encodeCursor(page[page.length - 1].job.id) : null,
  };
}
