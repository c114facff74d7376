/** revq jobs: list, show, follow, wait for and cancel jobs. */
import { JOB_KINDS, JOB_STATUSES, Job, type JobEvent, JobList } from "@revq/shared";
import { choice, positiveInt } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { usageError } from "../errors.ts";
import { evaluationLines } from "../evaluation.ts";
import { followEvents, getJob, requireSucceeded, waitForJob } from "../jobs.ts";
import { collectPages } from "../pages.ts";

const help = `usage: revq jobs [list] [--status S] [--kind K] [--limit N]
       revq jobs show ID
       revq jobs events ID [--follow]
       revq jobs wait ID
       revq jobs cancel ID

  list       the newest jobs first (--limit, default 20)
  show       one job: status, progress, result or error, a train job's evaluation
  events     what happened to it; --follow keeps reading until it ends
  wait       waits until it ends (exit 1 unless it succeeded)
  cancel     cancels a queued or running job

  --status <s>        queued, running, succeeded, failed or cancelled
  --kind <k>          encode, reconstruct, extract or train
  --limit <n>         at most this many [20]
  --follow            events: keep reading until the job ends
${COMMON_HELP}`;

export const jobs: Command = {
  name: "jobs",
  summary: "list, show, follow, wait for and cancel jobs",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      status: { type: "string" },
      kind: { type: "string" },
      limit: { type: "string" },
      follow: { type: "boolean" },
    });
    if (!s) return;
    const [action = "list", id, ...rest] = s.parsed.positionals;
    if (rest.length > 0) throw usageError(`unexpected ${rest.join(" ")}`, "see revq jobs --help");
    const needId = () => {
      if (!id) throw usageError(`revq jobs ${action} needs a job id`);
      return id;
    };
    const api = s.api();
    switch (action) {
      case "list": {
        const status = s.parsed.values.status
          ? choice(s.parsed, "status", JOB_STATUSES, "queued")
          : undefined;
        const kind = s.parsed.values.kind
          ? choice(s.parsed, "kind", JOB_KINDS, "encode")
          : undefined;
        const limit = positiveInt(s.parsed, "limit") ?? 20;
        const found = await collectPages(api, "/v1/jobs", JobList, (p) => p.jobs, limit, {
          status,
          kind,
        });
        s.out.result({ jobs: found });
        if (found.length === 0) s.out.line("no jobs");
        for (const job of found) s.out.line(jobLine(job));
        return;
      }
      case "show": {
        const job = await getJob(api, needId());
        s.out.result(job);
        s.out.line(jobDetails(job));
        return;
      }
      case "events": {
        const jobId = needId();
        const events: JobEvent[] = [];
        const print = (event: JobEvent) => {
          events.push(event);
          s.out.line(eventLine(event));
        };
        await followEvents(api, jobId, print, { follow: s.parsed.values.follow === true });
        s.out.result({ events });
        return;
      }
      case "wait": {
        const progress = s.out.progress("job     ");
        const job = await waitForJob(api, needId(), progress);
        progress.end();
        s.out.result(job);
        s.out.line(jobLine(job));
        requireSucceeded(job);
        return;
      }
      case "cancel": {
        const job = await api.json("POST", `/v1/jobs/${encodeURIComponent(needId())}/cancel`, Job);
        s.out.result(job);
        s.out.line(`${job.id} ${job.status}`);
        return;
      }
      default:
        throw usageError(`unknown action ${JSON.stringify(action)}`, "see revq jobs --help");
    }
  },
};

export function jobLine(job: Job): string {
  const progress =
    job.status === "running" && job.progress
      ? ` ${job.progress.done}${job.progress.total ? `/${job.progress.total}` : ""}${job.progress.stage ? ` ${job.progress.stage}` : ""}`
      : "";
  const error = job.error ? ` ${job.error.code}: ${job.error.message}` : "";
  return `${job.id}  ${job.kind.padEnd(11)} ${job.status.padEnd(9)} ${job.createdAt}${progress}${error}`;
}

function jobDetails(job: Job): string {
  const lines = [
    `${job.id} (${job.kind}): ${job.status}, ${job.attempts} attempt${job.attempts === 1 ? "" : "s"}`,
    `  created    ${job.createdAt}${job.finishedAt ? `, finished ${job.finishedAt}` : ""}`,
  ];
  const tokenizer = (label: string, t: NonNullable<Job["tokenizer"]>) =>
    lines.push(`  ${label.padEnd(10)} ${t.id} (${t.manifestHash.slice(0, 12)}…)`);
  if (job.baseTokenizer) tokenizer("base", job.baseTokenizer);
  if (job.tokenizer) tokenizer(job.kind === "train" ? "trained" : "tokenizer", job.tokenizer);
  if (job.progress) {
    lines.push(
      `  progress   ${job.progress.done}${job.progress.total ? `/${job.progress.total}` : ""} ${job.progress.stage ?? ""}`,
    );
  }
  if (job.result) lines.push(`  result     ${JSON.stringify(job.result)}`);
  if (job.error) lines.push(`  error      ${job.error.code}: ${job.error.message}`);
  if (job.evaluation) lines.push(...evaluationLines(job.evaluation));
  return lines.join("\n");
}

export function eventLine(event: JobEvent): string {
  const d = event.data;
  const time = event.createdAt.slice(11, 19);
  switch (event.type) {
    case "status":
      return `${time}  status    ${d.status}${d.reason ? ` (${d.reason})` : ""}`;
    case "progress":
      return `${time}  progress  ${d.done}${d.total !== undefined ? `/${d.total}` : ""}${d.stage ? ` ${d.stage}` : ""}`;
    case "metrics":
      return `${time}  metrics   ${Object.entries(d)
        .map(
          ([k, v]) =>
            `${k}=${typeof v === "number" ? Number(v.toPrecision(4)) : JSON.stringify(v)}`,
        )
        .join(" ")}`;
    case "log":
      return `${time}  log       ${d.message ?? JSON.stringify(d)}`;
  }
}
