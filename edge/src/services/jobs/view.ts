/** A job as the API shows it (and webhooks send it), from its row. */
import type { Job, JobCreate } from "@revq/shared";
import { sql } from "drizzle-orm";
import { resultOf } from "../../db/job-results.ts";
import { jobs, tasks } from "../../db/schema.ts";
import { isoTime } from "../../schemas/common.ts";
import { jobImagePath, jobLatentsPath } from "./images.ts";
import type { JobRow } from "./read.ts";

/** The stored result, and for a reconstruct job where to download each image (and the latents). */
function resultView(row: JobRow): Job["result"] {
  // A train job's one output is the tokenizer it made: shown as its `tokenizer`, not twice.
  if (row.kind === "train") return null;
  const reconstructed = resultOf(row, "reconstruct");
  if (!reconstructed) return row.result;
  return {
    ...reconstructed,
    images: reconstructed.images.map((image) => ({
      ...image,
      url: jobImagePath(row.id, image.index),
    })),
    ...(reconstructed.latents
      ? { latents: { ...reconstructed.latents, url: jobLatentsPath(row.id) } }
      : {}),
  };
}

/**
 * What every query of jobs for the API selects (from jobs left-joined with their tasks): the row,
 * its task's attempts (a dataset encode job, which has no task, its shard jobs' together) and,
 * as a JSON array, the ids of its child jobs, oldest first.
 */
export const JOB_VIEW_COLUMNS = {
  job: jobs,
  attempts:
    sql<number>`coalesce(${tasks.attempt}, (SELECT sum(t.attempt) FROM tasks AS t JOIN jobs AS c ON t.job_id = c.id WHERE c.parent_job_id = ${jobs.id}), 0)`.mapWith(
      Number,
    ),
  childJobs:
    sql`(SELECT json_group_array(id) FROM (SELECT c.id FROM jobs AS c WHERE c.parent_job_id = ${jobs.id} ORDER BY c.id))`.mapWith(
      (ids: string): string[] => JSON.parse(ids),
    ),
};

export type JobViewRow = { job: JobRow; attempts: number; childJobs: string[] };

const isDatasetEncode = (row: JobRow) => row.kind === "encode" && "frozen" in row.inputs;

/** What a job's row keeps of the request that made it (services/jobs/create.ts). */
type StoredRequest = Pick<JobCreate, "inputs"> & { parameters?: Job["parameters"] };

/**
 * The job's `inputs`, one level, and a train job's `parameters`: from the request its row keeps,
 * or for a child job (extract, shard), which no request made, from its shards.
 */
function requestView(row: JobRow): Pick<Job, "inputs" | "parameters"> {
  if (row.parentJobId !== null) return { inputs: row.inputs as Job["inputs"] };
  const { inputs, parameters } = row.inputs as StoredRequest;
  return row.kind === "train" ? { inputs, parameters } : { inputs };
}

/**
 * The tokenizers: the row's is the one the job works with, which for a train job is its base;
 * a train job's own `tokenizer` is the one it made, once it has, and its `evaluation` that
 * tokenizer's, or the figures of one that missed the job's thresholds (kept with the error).
 */
function tokenizersView(row: JobRow): Pick<Job, "tokenizer" | "baseTokenizer" | "evaluation"> {
  const named =
    row.tokenizerId === null || row.tokenizerHash === null
      ? null
      : { id: row.tokenizerId, manifestHash: row.tokenizerHash };
  if (row.kind !== "train") return { tokenizer: named };
  const result = resultOf(row, "train");
  const made = result?.tokenizer;
  const evaluation = result?.evaluation ?? row.error?.evaluation;
  return {
    tokenizer: made ? { id: made.id, manifestHash: made.manifestHash } : null,
    ...(named ? { baseTokenizer: named } : {}),
    ...(evaluation ? { evaluation } : {}),
  };
}

/** The error as the API shows it: a train job's figures are its `evaluation`, not repeated here. */
function errorView(row: JobRow): Job["error"] {
  return row.error && { code: row.error.code, message: row.error.message };
}

export function jobView({ job: row, attempts, childJobs }: JobViewRow) {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    ...tokenizersView(row),
    ...requestView(row),
    webhookUrl: row.webhookUrl,
    progress: row.progress,
    attempts,
    result: resultView(row),
    error: errorView(row),
    createdAt: isoTime(row.createdAt),
    updatedAt: isoTime(row.updatedAt),
    finishedAt: row.finishedAt === null ? null : isoTime(row.finishedAt),
    ...(row.parentJobId === null ? {} : { parent: row.parentJobId }),
    ...(row.kind === "train" ? { extractJobs: childJobs } : {}),
    ...(isDatasetEncode(row) ? { shardJobs: childJobs } : {}),
  };
}
