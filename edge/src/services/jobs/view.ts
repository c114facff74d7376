/** A job as the API shows it (and webhooks send it), from its row. */
import { sql } from "drizzle-orm";
import { resultOf } from "../../db/job-results.ts";
import { jobs, tasks } from "../../db/schema.ts";
import { isoTime } from "../../schemas/common.ts";
import { jobImagePath } from "./images.ts";
import type { JobRow } from "./read.ts";

/** The stored result, and for a reconstruct job where to download each image. */
function resultView(row: JobRow) {
  const reconstructed = resultOf(row, "reconstruct");
  if (!reconstructed) return row.result;
  return {
    ...reconstructed,
    images: reconstructed.images.map((image) => ({
      ...image,
      url: jobImagePath(row.id, image.index),
    })),
  };
}

/**
 * What every query of jobs for the API selects (from jobs joined with their tasks): the row,
 * its task's attempts and, as a JSON array, the ids of its extract jobs, oldest first.
 */
export const JOB_VIEW_COLUMNS = {
  job: jobs,
  attempts: tasks.attempt,
  extractJobs:
    sql`(SELECT json_group_array(id) FROM (SELECT c.id FROM jobs AS c WHERE c.parent_job_id = ${jobs.id} ORDER BY c.id))`.mapWith(
      (ids: string): string[] => JSON.parse(ids),
    ),
};

export type JobViewRow = { job: JobRow; attempts: number; extractJobs: string[] };

export function jobView({ job: row, attempts, extractJobs }: JobViewRow) {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    tokenizer:
      row.tokenizerId === null || row.tokenizerHash === null
        ? null
        : { id: row.tokenizerId, manifestHash: row.tokenizerHash },
    inputs: row.inputs,
    webhookUrl: row.webhookUrl,
    progress: row.progress,
    attempts,
    result: resultView(row),
    error: row.error,
    createdAt: isoTime(row.createdAt),
    updatedAt: isoTime(row.updatedAt),
    finishedAt: row.finishedAt === null ? null : isoTime(row.finishedAt),
    ...(row.parentJobId === null ? {} : { parent: row.parentJobId }),
    ...(row.kind === "train" ? { extractJobs } : {}),
  };
}
