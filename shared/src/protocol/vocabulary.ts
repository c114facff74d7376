/**
 * The words of the protocol, written once: what kinds of job there are, the states a job and a
 * task go through, and the webhook events a job's ending fires. The edge's tables and schemas,
 * the CLI and the GPU worker all take them from here.
 */
import * as z from "zod";

/** What a job does; each of its tasks is of the same kind. */
export const JOB_KINDS = ["encode", "reconstruct", "extract", "train"] as const;
export const JobKind = z.enum(JOB_KINDS);
export type JobKind = z.infer<typeof JobKind>;

export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;

/** The statuses a job never leaves. */
export const FINISHED_JOB_STATUSES = ["succeeded", "failed", "cancelled"] as const;
export type FinishedJobStatus = (typeof FINISHED_JOB_STATUSES)[number];

export function isFinished(status: string): status is FinishedJobStatus {
  return (FINISHED_JOB_STATUSES as readonly string[]).includes(status);
}

export const TASK_STATUSES = ["queued", "leased", "succeeded", "failed", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** A job's ending, as webhooks announce it: `training.*` for train jobs, `job.*` for others. */
export const WEBHOOK_EVENTS = [
  "job.succeeded",
  "job.failed",
  "job.cancelled",
  "training.succeeded",
  "training.failed",
  "training.cancelled",
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export function endingEvent(kind: JobKind, status: FinishedJobStatus): WebhookEvent {
  return `${kind === "train" ? "training" : "job"}.${status}`;
}
