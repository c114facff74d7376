/**
 * The frame of the benchmarks that measure tfjs work on every backend: each case runs in a child
 * process of the same script (so one backend's memory, compiled kernels or Dawn threads cannot
 * skew the next case), and a failing case is recorded instead of ending the run.
 */
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { BACKEND_NAMES, type BackendName, selectBackend } from "../../gpu-worker/src/backend.ts";

const CASE_FLAG = "--case";

export type PerBackendBench<Case, Row> = {
  /** import.meta.url of the benchmark script, which is re-run for each case. */
  script: string;
  args: string[];
  minMs: (quick: boolean) => number;
  cases: (backend: BackendName, accelerated: boolean, quick: boolean) => Case[];
  /** Runs one case on the selected backend; called in the child process. */
  runCase: (backend: BackendName, c: Case, minMs: number) => Promise<Row[]>;
  /** One line for the console per measured row. */
  describe: (backend: BackendName, row: Row) => string;
};

export type PerBackendFigures<Case, Row> = {
  quick: boolean;
  minMsPerCase: number;
  loadAverage1m: number;
  backends: Record<string, unknown | { rows: (Row | { case: Case; error: string })[] }>;
};

/**
 * In the parent: every case on every backend asked for on the command line (all by default),
 * returning the figures. In a child (`--case`): the one case, printed as JSON; returns undefined.
 */
export async function benchPerBackend<Case, Row>(
  bench: PerBackendBench<Case, Row>,
): Promise<PerBackendFigures<Case, Row> | undefined> {
  const { args } = bench;
  const at = args.indexOf(CASE_FLAG);
  if (at >= 0) {
    const { backend, c, minMs } = JSON.parse(args[at + 1]);
    console.log(JSON.stringify(await bench.runCase(backend, c, minMs)));
    return undefined;
  }
  const quick = args.includes("--quick");
  const asked = args.filter((a): a is BackendName =>
    (BACKEND_NAMES as readonly string[]).includes(a),
  );
  const minMs = bench.minMs(quick);
  const backends: Record<string, unknown> = {};
  for (const backend of asked.length > 0 ? asked : BACKEND_NAMES) {
    let selection: Awaited<ReturnType<typeof selectBackend>>;
    try {
      selection = await selectBackend(backend);
    } catch (error) {
      backends[backend] = { error: (error as Error).message };
      console.log(`${backend}: not available (${(error as Error).message})`);
      continue;
    }
    console.log(`${backend}: ${selection.reason}`);
    const rows: (Row | { case: Case; error: string })[] = [];
    for (const c of bench.cases(backend, selection.accelerated, quick)) {
      try {
        const output = execFileSync(
          process.execPath,
          [fileURLToPath(bench.script), CASE_FLAG, JSON.stringify({ backend, c, minMs })],
          { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
        );
        for (const row of JSON.parse(output.trim().split("\n").at(-1) as string) as Row[]) {
          console.log(bench.describe(backend, row));
          rows.push(row);
        }
      } catch (error) {
        const message = (error as Error).message.split("\n")[0];
        console.log(`${backend} ${JSON.stringify(c)} failed: ${message}`);
        rows.push({ case: c, error: message });
      }
    }
    backends[backend] = { reason: selection.reason, accelerated: selection.accelerated, rows };
  }
  return { quick, minMsPerCase: minMs, loadAverage1m: loadavg()[0], backends };
}
