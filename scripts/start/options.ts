/**
 * What `npm start` runs with: flags, else environment variables, else defaults. The defaults are
 * what a newcomer wants (port 8787, state under .revq/, the tokenizer shipped in the repository);
 * the variables let tests and second checkouts run beside it.
 */
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The tokenizer `npm start` registers: a folder with manifest.json and the files it names. */
export const DEFAULT_TOKENIZER_DIR = join(ROOT, "models", "default-tokenizer");

export type StartOptions = {
  port: number;
  /** Everything the local stack keeps: D1, R2 and queue state, keys, logs, the lock. */
  stateDir: string;
  tokenizerDir: string;
  /** The worker's TensorFlow.js backend (revq-worker --backend). */
  backend: string;
};

export class UsageError extends Error {}

export const HELP = `npm start [-- options]: the whole revq stack on this machine

  --port <n>            port of the edge (REVQ_PORT, default 8787)
  --state-dir <dir>     where data, keys and logs are kept (REVQ_STATE_DIR, default .revq)
  --tokenizer <dir>     tokenizer folder to register (REVQ_TOKENIZER_DIR,
                        default models/default-tokenizer)
  --backend <name>      the worker's backend: auto|tensorflow|webgpu|wasm|cpu
                        (REVQ_BACKEND, default auto)
  -h, --help            this text
`;

export function parseStartOptions(
  argv: string[],
  env: Record<string, string | undefined>,
): StartOptions | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string" },
        "state-dir": { type: "string" },
        tokenizer: { type: "string" },
        backend: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message} (see npm start -- --help)`);
  }
  if (values.help) return "help";
  const text = (flag: string, variable: string) =>
    (values[flag] as string | undefined) ?? env[variable] ?? undefined;
  const portText = text("port", "REVQ_PORT") ?? "8787";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new UsageError(`--port (REVQ_PORT) must be a port number, not ${portText}`);
  }
  const backend = text("backend", "REVQ_BACKEND") ?? "auto";
  if (!["auto", "tensorflow", "webgpu", "wasm", "cpu"].includes(backend)) {
    throw new UsageError(`--backend (REVQ_BACKEND) must be auto, tensorflow, webgpu, wasm or cpu`);
  }
  const path = (p: string) => (isAbsolute(p) ? p : resolve(ROOT, p));
  return {
    port,
    stateDir: path(text("state-dir", "REVQ_STATE_DIR") ?? ".revq"),
    tokenizerDir: path(text("tokenizer", "REVQ_TOKENIZER_DIR") ?? DEFAULT_TOKENIZER_DIR),
    backend,
  };
}
