/**
 * A real revq-worker process (gpu-worker/src/main.ts under the same Node), configured through
 * its environment like a user would, its JSON log lines collected so tests can wait for what it
 * says it did.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LocalEdge } from "./edge.ts";
import { ROOT } from "./edge.ts";

export type LogLine = { level: string; msg: string; [field: string]: unknown };

export type WorkerOptions = {
  name: string;
  workerKey: string;
  cacheDir?: string;
  graceSeconds?: number;
  tasks?: number;
  batchSize?: number;
  backend?: string;
};

export class WorkerProcess {
  readonly lines: LogLine[] = [];
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(edge: LocalEdge, options: WorkerOptions) {
    // A cache of its own unless the test shares one; removed when the process exits.
    const ownCache = options.cacheDir === undefined;
    const cacheDir = options.cacheDir ?? mkdtempSync(join(tmpdir(), "revq-e2e-cache-"));
    this.child = spawn(process.execPath, [join(ROOT, "gpu-worker/src/main.ts")], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REVQ_EDGE_URL: edge.url,
        REVQ_WORKER_KEY: options.workerKey,
        REVQ_BACKEND: options.backend ?? "wasm",
        REVQ_WORKER_NAME: options.name,
        REVQ_CACHE_DIR: cacheDir,
        REVQ_LOG_FORMAT: "json",
        REVQ_LEASE_WAIT_SECONDS: "1",
        REVQ_GRACE_SECONDS: String(options.graceSeconds ?? 10),
        REVQ_TASKS: String(options.tasks ?? 2),
        REVQ_BATCH_SIZE: String(options.batchSize ?? 8),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pending = "";
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const complete = pending.split("\n");
      pending = complete.pop() ?? "";
      for (const line of complete) {
        this.output.push(line);
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          // not a log line (a library printing to stdout)
        }
      }
    });
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => this.output.push(chunk));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        if (ownCache) rmSync(cacheDir, { recursive: true, force: true });
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** The first log line that satisfies `match`, waiting up to `ms` for it. */
  async waitFor(match: (line: LogLine) => boolean, ms = 60_000): Promise<LogLine> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the worker exited:\n${this.output.join("\n")}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`no such log line in time; the worker said:\n${this.output.join("\n")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Stops it as an operator would (SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.kill("SIGTERM");
    await this.exited;
  }
}
