/**
 * Runs the `revq` CLI as a user would: its bin as a subprocess (with this Node, 22), in a given
 * folder and environment, collecting stdout, stderr and the exit code. The same for the
 * register-tokenizer script.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin", "revq");

export type CliRun = { code: number; stdout: string; stderr: string };

export function revq(
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined> },
): Promise<CliRun> {
  return runNode(BIN, args, options);
}

/** scripts/register-tokenizer.ts (npm run register-tokenizer). */
export function registerTokenizer(
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<CliRun> {
  return runNode(join(ROOT, "scripts", "register-tokenizer.ts"), args, options);
}

function runNode(
  script: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined> },
): Promise<CliRun> {
  // Only what a user's shell would have: no REVQ_* leaking in from the test's own environment.
  const env: Record<string, string | undefined> = {
    PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}`,
    HOME: process.env.HOME,
    ...options.env,
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { cwd: options.cwd, env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
      },
    );
  });
}

/** The JSON document a --json run printed; fails with the run's stderr when there is none. */
export function json<T = Record<string, unknown>>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`no JSON on stdout (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}
