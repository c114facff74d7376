/**
 * The worker's configuration, from command-line flags and environment variables (a flag wins
 * over its variable). Secrets are best given by environment: flags show in `ps`.
 */
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as z from "zod";
import { type BackendChoice, isBackendChoice } from "./backend.ts";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";

export type WorkerConfig = {
  edgeUrl: string;
  workerKey: string;
  backend: BackendChoice;
  /** Images per VAE call. */
  batchSize: number;
  /** Tasks leased and worked on at once. */
  tasksHeld: number;
  cacheDir: string;
  /** VAE weights that tokenizers name without shipping them (pipeline/local-vae.ts). */
  modelsDir: string;
  name: string;
  graceSeconds: number;
  leaseWaitSeconds: number;
  logFormat: LogFormat | "auto";
  logLevel: LogLevel;
};

type Option = { flag: string; env: string; help: string; default?: string };

/** Every setting, its flag, its variable and its default, in the order --help lists them. */
export const OPTIONS = {
  edgeUrl: { flag: "edge-url", env: "REVQ_EDGE_URL", help: "base URL of the revq edge" },
  workerKey: {
    flag: "worker-key",
    env: "REVQ_WORKER_KEY",
    help: "worker key (rvq_wrk_...); prefer the variable",
  },
  backend: {
    flag: "backend",
    env: "REVQ_BACKEND",
    help: "auto|tensorflow|webgpu|wasm|cpu",
    default: "auto",
  },
  batchSize: {
    flag: "batch-size",
    env: "REVQ_BATCH_SIZE",
    help: "images per VAE call",
    default: "8",
  },
  tasksHeld: { flag: "tasks", env: "REVQ_TASKS", help: "tasks held at once", default: "2" },
  cacheDir: {
    flag: "cache-dir",
    env: "REVQ_CACHE_DIR",
    help: "tokenizer cache (default: $XDG_CACHE_HOME/revq-worker or ~/.cache/revq-worker)",
  },
  modelsDir: {
    flag: "models-dir",
    env: "REVQ_MODELS_DIR",
    help: "VAE weights not shipped with tokenizers, as <dir>/<vae name>/ (default: $XDG_DATA_HOME/revq-worker/models or ~/.local/share/revq-worker/models)",
  },
  name: {
    flag: "name",
    env: "REVQ_WORKER_NAME",
    help: "this worker's name in job events (default: host-pid)",
  },
  graceSeconds: {
    flag: "grace-seconds",
    env: "REVQ_GRACE_SECONDS",
    help: "on SIGTERM/SIGINT, how long held tasks may go on",
    default: "30",
  },
  leaseWaitSeconds: {
    flag: "lease-wait-seconds",
    env: "REVQ_LEASE_WAIT_SECONDS",
    help: "long-poll of one lease call",
    default: "20",
  },
  logFormat: {
    flag: "log-format",
    env: "REVQ_LOG_FORMAT",
    help: "auto|json|pretty (auto: pretty on a terminal)",
    default: "auto",
  },
  logLevel: {
    flag: "log-level",
    env: "REVQ_LOG_LEVEL",
    help: "debug|info|warn|error",
    default: "info",
  },
} as const satisfies Record<string, Option>;

type Key = keyof typeof OPTIONS;

export class ConfigError extends Error {
  override name = "ConfigError";
}

const count = (max: number) => z.coerce.number().int().min(1).max(max);
const seconds = (max: number) => z.coerce.number().min(0).max(max);
const url = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

const required = z.string({ error: "is required" });

const Raw = z.object({
  edgeUrl: required.pipe(url),
  workerKey: required.min(1, "is required"),
  backend: z.string().refine(isBackendChoice, "must be auto, tensorflow, webgpu, wasm or cpu"),
  batchSize: count(1024),
  tasksHeld: count(16),
  cacheDir: z.string().min(1).optional(),
  modelsDir: z.string().min(1).optional(),
  name: z.string().min(1).max(200).optional(),
  graceSeconds: seconds(3600),
  leaseWaitSeconds: seconds(60),
  logFormat: z.enum(["auto", "json", "pretty"]),
  logLevel: z.enum(LOG_LEVELS),
});

/** "help" when --help was asked for; throws ConfigError listing every problem otherwise. */
export function parseConfig(
  argv: string[],
  env: Record<string, string | undefined>,
): WorkerConfig | "help" {
  const keys = Object.keys(OPTIONS) as Key[];
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(keys.map((key) => [OPTIONS[key].flag, { type: "string" as const }])),
      },
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message} (see --help)`);
  }
  if (values.help) return "help";
  // A bucket credential left on the GPU box is one more secret to leak, and no longer needed.
  const s3 = Object.keys(env).filter((name) => name.startsWith("REVQ_S3_") && env[name]);
  if (s3.length > 0) {
    throw new ConfigError(
      `${s3.join(", ")}: revq-worker holds no bucket credential any more (the edge grants it a URL per object); remove ${s3.length > 1 ? "them" : "it"} from this machine (docs/self-hosting.md)`,
    );
  }
  const raw: Record<string, string | undefined> = {};
  for (const key of keys) {
    const option: Option = OPTIONS[key];
    const flag = values[option.flag];
    raw[key] = (typeof flag === "string" ? flag : undefined) ?? env[option.env] ?? option.default;
  }
  const parsed = Raw.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const option: Option = OPTIONS[issue.path[0] as Key];
      return `--${option.flag} (${option.env}): ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  const c = parsed.data;
  return {
    edgeUrl: c.edgeUrl,
    workerKey: c.workerKey,
    backend: c.backend as BackendChoice,
    batchSize: c.batchSize,
    tasksHeld: c.tasksHeld,
    cacheDir: c.cacheDir ?? join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "revq-worker"),
    modelsDir:
      c.modelsDir ??
      join(env.XDG_DATA_HOME || join(homedir(), ".local", "share"), "revq-worker", "models"),
    name: c.name ?? `${hostname()}-${process.pid}`,
    graceSeconds: c.graceSeconds,
    leaseWaitSeconds: c.leaseWaitSeconds,
    logFormat: c.logFormat,
    logLevel: c.logLevel,
  };
}

export function helpText(): string {
  const lines = (Object.values(OPTIONS) as Option[]).map((o) => {
    const head = `  --${o.flag} <value>`.padEnd(34);
    const tail = o.default === undefined ? "" : ` [${o.default}]`;
    return `${head}${o.help}${tail}\n${"".padEnd(34)}env ${o.env}`;
  });
  return [
    "revq-worker: pulls encode and reconstruct tasks from a revq edge and runs them on this machine",
    "",
    "usage: revq-worker [options]",
    "",
    ...lines,
    "  -h, --help                      this text",
    "",
  ].join("\n");
}
