/** Following a job: waiting for its end with its progress, reading its events as they come. */
import { EventPage, isFinished, Job, type JobEvent, sleep } from "@revq/shared";
import type { Api } from "./api.ts";
import { CliError, EXIT } from "./errors.ts";
import { type Progress, progressStage } from "./progress.ts";

const POLL_MS = 500;

export function getJob(api: Api, id: string): Promise<Job> {
  return api.json("GET", `/v1/jobs/${encodeURIComponent(id)}`, Job);
}

/** Polls the job until it is finished, drawing its progress. */
export async function waitForJob(api: Api, id: string, progress: Progress): Promise<Job> {
  for (;;) {
    const job = await getJob(api, id);
    if (isFinished(job.status)) return job;
    if (job.progress) {
      progress.update(job.progress.done, job.progress.total, progressStage(job.progress));
    } else {
      progress.status(job.status === "queued" ? "queued (waiting for a worker)…" : "running…");
    }
    await sleep(POLL_MS);
  }
}

export type FollowOptions = {
  /** Until the job is finished (the default), else only the events there are now. */
  follow?: boolean;
  /** Called at each reading while the job is unfinished, before its new events. */
  onPoll?: () => Promise<void>;
};

/** Calls `onEvent` for each event, in order. */
export async function followEvents(
  api: Api,
  id: string,
  onEvent: (event: JobEvent) => void,
  { follow = true, onPoll }: FollowOptions = {},
): Promise<Job> {
  let cursor = 0;
  for (;;) {
    // Read the job first: events written before it finished are then all in the pages below.
    const job = await getJob(api, id);
    if (!isFinished(job.status)) await onPoll?.();
    for (;;) {
      const page = await api.json("GET", `/v1/jobs/${encodeURIComponent(id)}/events`, EventPage, {
        query: { after: cursor, limit: 500 },
      });
      for (const event of page.events) {
        onEvent(event);
        cursor = event.id;
      }
      if (page.next === null) break;
    }
    if (!follow || isFinished(job.status)) return job;
    await sleep(POLL_MS);
  }
}

/** A finished job that did not succeed is the command's failure (exit 1), with its reason. */
export function requireSucceeded(job: Job): void {
  if (job.status === "succeeded") return;
  const why = job.error ? `${job.error.code}: ${job.error.message}` : "no reason given";
  throw new CliError(
    job.status === "cancelled" ? `job ${job.id} was cancelled` : `job ${job.id} failed (${why})`,
    EXIT.jobFailed,
    { hint: `see what happened: revq jobs events ${job.id}` },
  );
}
