/** A job as the API shows it (and webhooks send it), from its row. */
import { sql } from "drizzle-orm";
import { jobs, tasks } from "../db/schema.ts";
import { isoTime } from "../schemas/common.ts";
import { jobImagePath } from "./job-images.ts";
import type { JobRow } from "./jobs.ts";
import type { ReconstructResult } from "./task-results.ts";

/** The stored result, and for a reconstruct job where to download each image. */
function resultView(row: JobRow, result: string): Record<string, unknown> {
  const parsed = JSON.parse(result) as Record<string, unknown>;
  if (row.kind !== "reconstruct") return parsed;
  const { images } = parsed as ReconstructResult;
  return {
    ...parsed,
    images: images.map((image) => ({ ...image, url: jobImagePath(row.id, image.index) })),
  };
}

/**
 * What every query of jobs for the API selects (from jobs joined with their tasks): the row,
 * its task's attempts and, as a JSON array, the ids of its extract jobs, oldest first.
 */
export const JOB_VIEW_COLUMNS = {
  job: jobs,
  attempts: tasks.attempt,
  extractJobs: sql<string>`(SELECT json_group_array(id) FROM (SELECT c.id FROM jobs AS c WHERE c.parent_job_id = ${jobs.id} ORDER BY c.id))`,
};

export type JobViewRow = { job: JobRow; attempts: number; extractJobs: string };

export function jobView({ job: row, attempts, extractJobs }: JobViewRow) {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    tokenizer:
      row.tokenizerId === null || row.tokenizerHash === null
        ? null
        : { id: row.tokenizerId, manifestHash: row.tokenizerHash },
    inputs: JSON.parse(row.inputs) as Record<string, unknown>,
    webhookUrl: row.webhookUrl,
    progress: row.progress === null ? null : JSON.parse(row.progress),
    attempts,
    result: row.result === null ? null : resultView(row, row.result),
    error: row.error === null ? null : JSON.parse(row.error),
    createdAt: isoTime(row.createdAt),
    updatedAt: isoTime(row.updatedAt),
    finishedAt: row.finishedAt === null ? null : isoTime(row.finishedAt),
    ...(row.parentJobId === null ? {} : { parent: row.parentJobId }),
    ...(row.kind === "train" ? { extractJobs: JSON.parse(extractJobs) as string[] } : {}),
  };
}
