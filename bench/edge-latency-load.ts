/**
 * The load generator of bench/edge-latency.ts, run as its own process so that the benchmark's
 * bookkeeping never competes with it: `connections` loops send one request after another to
 * the same URL for `seconds`, after a short warm-up, and report latency percentiles and rate.
 *
 *   node bench/edge-latency-load.ts '{"url": "...", "headers": {}, "seconds": 3, "connections": 1, "status": 200}'
 */
import { argv } from "node:process";

type Spec = {
  url: string;
  headers: Record<string, string>;
  seconds: number;
  connections: number;
  status: number;
};

const spec = JSON.parse(argv[2]) as Spec;
const WARM_UP_MS = 500;

async function run(untilMs: number, record: boolean, latencies: number[], failures: string[]) {
  let bytes = 0;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (performance.now() < untilMs) {
        const start = performance.now();
        const res = await fetch(spec.url, { headers: spec.headers });
        const body = await res.arrayBuffer();
        const ms = performance.now() - start;
        if (!record) continue;
        if (res.status !== spec.status) failures.push(`${res.status}`);
        latencies.push(ms);
        bytes += body.byteLength;
      }
    }),
  );
  return bytes;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

await run(performance.now() + WARM_UP_MS, false, [], []);
const latencies: number[] = [];
const failures: string[] = [];
const started = performance.now();
const bytes = await run(started + spec.seconds * 1000, true, latencies, failures);
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    requests: latencies.length,
    failures: failures.length,
    firstFailure: failures[0] ?? null,
    seconds: elapsed,
    requestsPerSecond: latencies.length / elapsed,
    bytesPerResponse: latencies.length ? bytes / latencies.length : 0,
    ms: {
      p50: percentile(latencies, 0.5),
      p90: percentile(latencies, 0.9),
      p99: percentile(latencies, 0.99),
      mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
      max: latencies[latencies.length - 1],
    },
  }),
);
