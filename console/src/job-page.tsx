/**
 * One job: its fields, its events as a timeline and, for a train job, charts of its epochs. The
 * job and the events that followed the last one seen are fetched together every second or so,
 * until the job has finished (the events of its last change come with it).
 */
import { isFinished, type Job, type JobEvent } from "@revq/shared";
import { useRef } from "preact/hooks";
import type { Api } from "./api.ts";
import { CancelButton } from "./cancel-button.tsx";
import { DetailPage, Field } from "./detail-page.tsx";
import { Evaluation } from "./evaluation.tsx";
import { EventTimeline } from "./event-timeline.tsx";
import { progressText, when } from "./format.ts";
import { href } from "./hash-route.ts";
import { JobImages } from "./job-images.tsx";
import { StatusBadge } from "./status-badge.tsx";
import { TrainCharts } from "./train-charts.tsx";
import { usePoll } from "./use-poll.ts";

type EventPage = { events: JobEvent[]; next: number | null };

const REFRESH_MS = 1500;

/** Fields the page shows in its own way; every other one is listed as it comes. */
const SHOWN = new Set([
  "id",
  "kind",
  "status",
  "progress",
  "error",
  "attempts",
  "createdAt",
  "updatedAt",
  "finishedAt",
  "parent",
  "extractJobs",
  "evaluation",
]);

function JobLink({ id }: { id: string }) {
  return (
    <a href={href(["jobs", id])}>
      <code>{id}</code>
    </a>
  );
}

function OtherFields({ job }: { job: Job }) {
  const others = Object.entries(job).filter(([name, value]) => !SHOWN.has(name) && value !== null);
  return (
    <>
      {others.map(([name, value]) => (
        <Field key={name} name={name}>
          {typeof value === "string" ? (
            <code>{value}</code>
          ) : (
            <pre>{JSON.stringify(value, null, 2)}</pre>
          )}
        </Field>
      ))}
    </>
  );
}

function Fields({ job }: { job: Job }) {
  return (
    <dl class="fields">
      <Field name="kind">{job.kind}</Field>
      <Field name="status">
        <StatusBadge status={job.status} />
        {!isFinished(job.status) && job.progress && (
          <span class="progress">
            {job.progress.total !== undefined && (
              <progress value={job.progress.done} max={job.progress.total} />
            )}{" "}
            {progressText(job.progress)}
          </span>
        )}
      </Field>
      {job.error && (
        <Field name="error" class="note-error">
          <code>{job.error.code}</code> {job.error.message}
        </Field>
      )}
      <Field name="attempts">{job.attempts}</Field>
      <Field name="created">{when(job.createdAt)}</Field>
      <Field name="updated">{when(job.updatedAt)}</Field>
      <Field name="finished">{when(job.finishedAt)}</Field>
      {job.parent && (
        <Field name="for the train job">
          <JobLink id={job.parent} />
        </Field>
      )}
      {job.extractJobs && job.extractJobs.length > 0 && (
        <Field name="extract jobs">
          {job.extractJobs.map((id) => (
            <span key={id}>
              <JobLink id={id} />{" "}
            </span>
          ))}
        </Field>
      )}
      <OtherFields job={job} />
    </dl>
  );
}

export function JobPage({ id }: { id: string }) {
  // Events seen so far, for this job only: each poll asks for those after the last one.
  const seen = useRef<{ id: string; events: JobEvent[] }>({ id, events: [] });
  if (seen.current.id !== id) seen.current = { id, events: [] };

  const polled = usePoll(
    async (api: Api) => {
      const path = `/v1/jobs/${encodeURIComponent(id)}`;
      const job = await api.get<Job>(path);
      const mine = seen.current;
      for (;;) {
        const after = mine.events[mine.events.length - 1]?.id ?? 0;
        const page = await api.get<EventPage>(`${path}/events?after=${after}&limit=500`);
        mine.events = [...mine.events, ...page.events];
        if (page.next === null) break;
      }
      return { job, events: mine.events };
    },
    [id],
    REFRESH_MS,
    ({ job }) => !isFinished(job.status),
  );

  return (
    <DetailPage
      list="jobs"
      title={
        <>
          Job <code>{id}</code>
        </>
      }
      error={polled.error}
      data={polled.data}
      loading="the job"
    >
      {({ job, events }) => (
        <>
          <div class="actions">
            <CancelButton job={job} onDone={polled.reload} />
          </div>
          <Fields job={job} />
          {job.kind === "train" && (
            <>
              <h2>Training</h2>
              <TrainCharts events={events} running={!isFinished(job.status)} />
              <h2>Evaluation</h2>
              <Evaluation
                evaluation={job.evaluation}
                missing={
                  isFinished(job.status)
                    ? "This training ended without an evaluation."
                    : "The held-out evaluation comes when the training ends."
                }
              />
            </>
          )}
          {(job.kind === "encode" || job.kind === "reconstruct") && (
            <>
              <h2>Images</h2>
              <JobImages job={job} />
            </>
          )}
          <h2>Events</h2>
          <EventTimeline events={events} />
        </>
      )}
    </DetailPage>
  );
}
