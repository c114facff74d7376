/**
 * A train job's extract jobs (docs/api.md, "Train jobs, datasets and latent extraction"): idle
 * workers encode the dataset's latent shards while the train job waits behind them. Shown while
 * any is unfinished, as one bar of their images, then one line saying how they ended.
 */
import { isFinished, type Job } from "@revq/shared";
import type { Api } from "./api.ts";
import { getJob } from "./jobs.ts";
import type { Output } from "./output.ts";
import type { Progress } from "./progress.ts";

export class ExtractJobs {
  private readonly api: Api;
  private readonly out: Output;
  private readonly ids: string[];
  private readonly latest = new Map<string, Job>();
  private readonly bar: Progress;
  private ended: boolean;

  constructor(api: Api, out: Output, ids: string[]) {
    this.api = api;
    this.out = out;
    this.ids = ids;
    this.bar = out.progress("extract ");
    this.ended = ids.length === 0;
  }

  /** Whether some are unfinished: the progress line is theirs meanwhile. */
  get active(): boolean {
    return !this.ended;
  }

  /** Reads the unfinished ones, draws their progress, and says how they ended once all have. */
  async poll(): Promise<void> {
    if (this.ended) return;
    const open = this.ids.filter((id) => !isFinished(this.latest.get(id)?.status ?? ""));
    for (const job of await Promise.all(open.map((id) => getJob(this.api, id)))) {
      this.latest.set(job.id, job);
    }
    const jobs = this.ids.map((id) => this.latest.get(id) as Job);
    const finished = jobs.filter((job) => isFinished(job.status));
    if (finished.length < jobs.length) {
      const done = jobs.reduce((sum, job) => sum + (job.progress?.done ?? 0), 0);
      const total = jobs.reduce((sum, job) => sum + (job.progress?.total ?? 0), 0);
      this.bar.update(done, total || undefined, `images, ${finished.length}/${jobs.length} jobs`);
      return;
    }
    this.ended = true;
    this.clear();
    const counts = new Map<string, number>();
    for (const job of jobs) counts.set(job.status, (counts.get(job.status) ?? 0) + 1);
    const said = [...counts].map(([status, n]) => `${n} ${status}`).join(", ");
    // A failed extract job fails nothing: its shards are left to the train job.
    const failed = counts.has("failed") ? " (the train job extracts their shards itself)" : "";
    const last = jobs.map((job) => job.finishedAt ?? "").sort();
    const time = String(last.at(-1)).slice(11, 19);
    this.out.line(
      `${time}  extract   ${jobs.length} extract job${jobs.length === 1 ? "" : "s"}: ${said}${failed}`,
    );
  }

  /** Clears their bar (drawn again at the next poll while some are unfinished). */
  clear(): void {
    this.bar.end();
  }
}
