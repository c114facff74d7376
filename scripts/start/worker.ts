/**
 * One revq-worker against the local edge: the worker key of the seed (the edge grants it bucket
 * URLs per task), its tokenizer cache in the state directory, JSON logs to a file.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./options.ts";
import { type Exit, Group } from "./processes.ts";

export type WorkerStart = { backend: string; device: string; accelerated: boolean };

/** How long the worker may finish held tasks after Ctrl-C before failing them as retryable. */
export const WORKER_GRACE_SECONDS = 10;

export function startWorker(options: {
  url: string;
  workerKey: string;
  backend: string;
  stateDir: string;
  logFile: string;
}): Group {
  return new Group("worker", process.execPath, [join(ROOT, "gpu-worker", "src", "main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      REVQ_EDGE_URL: options.url,
      REVQ_WORKER_KEY: options.workerKey,
      REVQ_BACKEND: options.backend,
      REVQ_WORKER_NAME: "local-worker",
      REVQ_CACHE_DIR: join(options.stateDir, "worker-cache"),
      REVQ_GRACE_SECONDS: String(WORKER_GRACE_SECONDS),
      REVQ_LOG_FORMAT: "json",
    },
    logFile: options.logFile,
  });
}

/** Waits for the worker's "revq-worker started" log line: it has a backend and is leasing. */
export async function waitWorkerStarted(group: Group, ms: number): Promise<WorkerStart> {
  const deadline = Date.now() + ms;
  let exit: Exit | undefined;
  void group.exited.then((e) => {
    exit = e;
  });
  for (;;) {
    const started = startedLine(group.logFile);
    if (started) return started;
    if (exit) {
      throw new Error(`revq-worker exited (${exit.code ?? exit.signal}):\n${group.tail()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`revq-worker did not start in ${ms / 1000} s:\n${group.tail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function startedLine(logFile: string): WorkerStart | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    if (!line.includes('"revq-worker started"')) continue;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    return {
      backend: String(parsed.backend),
      device: String(parsed.device ?? "unknown device"),
      accelerated: parsed.accelerated === true,
    };
  }
  return undefined;
}
