/**
 * What a succeeded job made, for its downloads: refused as absent for a job of another kind
 * (404 `no-<what>`), and as not there yet until the job has succeeded (409 `<what>-not-ready`).
 */
import type { JobKind } from "@revq/shared";
import { type JobResults, resultOf } from "../../db/job-results.ts";
import { HttpProblem } from "../../problem.ts";
import type { JobRow } from "./read.ts";

export function succeededResult<K extends JobKind>(
  job: JobRow,
  kind: K,
  what: "tokens" | "images" | "latents",
): JobResults[K] {
  if (job.kind !== kind) {
    throw new HttpProblem(
      404,
      `no-${what}` as const,
      `Job ${job.id} is a ${job.kind} job; only ${kind} jobs have ${what}.`,
    );
  }
  const result = resultOf(job, kind);
  if (job.status !== "succeeded" || result === null) {
    throw new HttpProblem(
      409,
      `${what}-not-ready` as const,
      `Job ${job.id} is ${job.status}; its ${what} exist once it has succeeded.`,
    );
  }
  return result;
}
