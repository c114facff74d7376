import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";

/** Writes a benchmark's figures to bench/results/<name>.json, with the machine they came from. */
export function writeResults(name: string, figures: unknown): string {
  const dir = new URL("../results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}.json`, dir);
  const record = {
    benchmark: name,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version },
    figures,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  return file.pathname;
}

/** Runs fn repeatedly until at least minMs have passed (and at least once); ms per call. */
export function timePerCall(fn: () => void, minMs: number): { msPerCall: number; calls: number } {
  let calls = 0;
  const start = performance.now();
  do {
    fn();
    calls++;
  } while (performance.now() - start < minMs);
  return { msPerCall: (performance.now() - start) / calls, calls };
}
