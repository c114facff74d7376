/**
 * The tenant's jobs, newest first, a page at a time, refreshed every few seconds; filtered by
 * kind and status (the list route's own filters, kept in the URL), with a cancel button on the
 * jobs that can still be cancelled.
 */
import { isFinished, JOB_KINDS, JOB_STATUSES, type Job } from "@revq/shared";
import { useState } from "preact/hooks";
import { CancelButton } from "./cancel-button.tsx";
import { ErrorNote } from "./error-note.tsx";
import { progressText, when } from "./format.ts";
import { href, type Route } from "./hash-route.ts";
import { StatusBadge } from "./status-badge.tsx";
import { usePoll } from "./use-poll.ts";

type JobPage = { jobs: Job[]; nextCursor: string | null };

const PAGE_SIZE = 25;
const REFRESH_MS = 2000;

function Filter(props: {
  label: string;
  name: "kind" | "status";
  values: readonly string[];
  route: Route;
}) {
  const { label, name, values, route } = props;
  const selected = route.query.get(name) ?? "";
  const choose = (value: string) => {
    const query = Object.fromEntries(route.query);
    location.hash = href(["jobs"], { ...query, [name]: value });
  };
  return (
    <label>
      {label}{" "}
      <select
        name={name}
        value={selected}
        onChange={(e) => choose((e.target as HTMLSelectElement).value)}
      >
        <option value="">all</option>
        {values.map((value) => (
          <option key={value} value={value}>
            {value}
          </option>
        ))}
      </select>
    </label>
  );
}

function EmptyJobs({ kind, status }: { kind: string | null; status: string | null }) {
  if (kind || status) {
    const what = [status, kind].filter(Boolean).join(" ");
    return <p class="empty">No {what} jobs. Clear the filters to see the others.</p>;
  }
  return (
    <div class="empty">
      <p>No jobs yet.</p>
      <p>
        Jobs appear here as you make them, for example with the CLI: <code>revq tokenize</code>{" "}
        <code>photo.png</code>, or <code>revq train</code> <code>photos/</code>.
      </p>
    </div>
  );
}

export function JobsPage({ route }: { route: Route }) {
  const kind = route.query.get("kind");
  const status = route.query.get("status");
  // Cursors of the pages before this one, so "Newer" can go back; reset with the filters.
  const [cursors, setCursors] = useState<{ filters: string; stack: string[] }>({
    filters: "",
    stack: [],
  });
  const filters = `${kind}|${status}`;
  const stack = cursors.filters === filters ? cursors.stack : [];
  const cursor = stack[stack.length - 1];
  const page = usePoll(
    (api) => {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (kind) params.set("kind", kind);
      if (status) params.set("status", status);
      if (cursor) params.set("cursor", cursor);
      return api.get<JobPage>(`/v1/jobs?${params}`);
    },
    [kind, status, cursor],
    REFRESH_MS,
  );
  const jobs = page.data?.jobs;
  return (
    <section>
      <h1>Jobs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <Filter label="Kind" name="kind" values={JOB_KINDS} route={route} />
        <Filter label="Status" name="status" values={JOB_STATUSES} route={route} />
      </form>
      <ErrorNote error={page.error} />
      {jobs === undefined ? (
        page.error === undefined && <p class="loading">Loading jobs…</p>
      ) : jobs.length === 0 && stack.length === 0 ? (
        <EmptyJobs kind={kind} status={status} />
      ) : (
        <table class="jobs list">
          <thead>
            <tr>
              <th>Job</th>
              <th>Kind</th>
              <th>Status</th>
              <th>Progress</th>
              <th>Created</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => (
              <tr key={job.id} data-job={job.id}>
                <td>
                  <a href={href(["jobs", job.id])}>
                    <code>{job.id}</code>
                  </a>
                </td>
                <td>{job.kind}</td>
                <td>
                  <StatusBadge status={job.status} />
                </td>
                <td class="progress">{isFinished(job.status) ? "" : progressText(job.progress)}</td>
                <td>{when(job.createdAt)}</td>
                <td>{when(job.updatedAt)}</td>
                <td>
                  <CancelButton job={job} onDone={page.reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pages">
        {stack.length > 0 && (
          <button type="button" onClick={() => setCursors({ filters, stack: stack.slice(0, -1) })}>
            Newer
          </button>
        )}
        {page.data?.nextCursor && (
          <button
            type="button"
            onClick={() =>
              setCursors({ filters, stack: [...stack, page.data?.nextCursor as string] })
            }
          >
            Older
          </button>
        )}
      </nav>
    </section>
  );
}
