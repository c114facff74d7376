/**
 * A job's events, oldest first: status changes, worker messages and metrics one by one, and a
 * run of progress reports as one entry (a heartbeat each, they would bury the rest).
 */
import type { JobEvent } from "@revq/shared";
import { figure, progressText, when } from "./format.ts";

type Entry = { event: JobEvent; repeats: number };

function entriesOf(events: JobEvent[]): Entry[] {
  const entries: Entry[] = [];
  for (const event of events) {
    const previous = entries[entries.length - 1];
    if (event.type === "progress" && previous?.event.type === "progress") {
      entries[entries.length - 1] = { event, repeats: previous.repeats + 1 };
    } else {
      entries.push({ event, repeats: 1 });
    }
  }
  return entries;
}

function valueText(value: unknown): string {
  if (typeof value === "number") return figure(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

function Pairs({ data, skip = [] }: { data: Record<string, unknown>; skip?: string[] }) {
  const pairs = Object.entries(data).filter(([name]) => !skip.includes(name));
  if (pairs.length === 0) return null;
  return (
    <span class="pairs">
      {pairs.map(([name, value]) => (
        <span key={name}>
          {name} <b>{valueText(value)}</b>
        </span>
      ))}
    </span>
  );
}

function Body({ entry }: { entry: Entry }) {
  const { type, data } = entry.event;
  switch (type) {
    case "status": {
      const error = data.error as { code?: string; message?: string } | undefined;
      return (
        <>
          <b>{String(data.status)}</b>
          {data.reason ? ` (${String(data.reason)})` : ""}
          {error && (
            <span class="note-error">
              {" "}
              {error.code}: {error.message}
            </span>
          )}{" "}
          <Pairs data={data} skip={["status", "reason", "error"]} />
        </>
      );
    }
    case "progress":
      return (
        <>
          progress {progressText(data as { done: number; total?: number; stage?: string })}
          {entry.repeats > 1 && <span class="muted"> (latest of {entry.repeats} reports)</span>}
        </>
      );
    case "log":
      return <span class="log">{String(data.message)}</span>;
    default:
      return (
        <>
          metrics <Pairs data={data} />
        </>
      );
  }
}

export function EventTimeline({ events }: { events: JobEvent[] }) {
  if (events.length === 0) return <p class="empty">No events yet.</p>;
  return (
    <ol class="timeline">
      {entriesOf(events).map((entry) => (
        <li key={entry.event.id} class={`event event-${entry.event.type}`}>
          <time dateTime={entry.event.createdAt}>{when(entry.event.createdAt)}</time>
          <span class="event-body">
            <Body entry={entry} />
          </span>
        </li>
      ))}
    </ol>
  );
}
