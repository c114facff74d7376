/**
 * End-to-end encode through the whole local stack, per tfjs backend: wrangler dev (D1, R2 and
 * its S3 door) and one real revq-worker process, on the tiny test tokenizer (the fixture DC-AE
 * at 32×32, 128 tokens × 64 codes; the default tokenizer does not exist yet).
 *
 * - latency: one image at a time, from the start of its upload until its tokens download from
 *   the edge (upload, job creation, lease, fetch, decode, VAE, search, write, complete, GET), with
 *   the part spent queued (job created → task leased) and the part in the worker;
 * - throughput: many jobs created at once, images per second from the first job's creation to
 *   the last job's success, the worker holding several tasks and batching across them;
 * - the bare encoder: the tokenizer's VAE alone on batches of the worker's size, in this process
 *   on the same backend (the stack idle meanwhile), and the throughput's share of it: how much
 *   of the device the pipeline around it (HTTP, image decoding, search, the edge) leaves unused.
 *
 *   npm run bench:encode                   # every backend that starts here
 *   npm run bench:encode -- wasm cpu       # only these
 *
 * Results: bench/results/encode.json.
 */
import { readTokenStream } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, selectBackend } from "../gpu-worker/src/backend.ts";
import { loadVae } from "../gpu-worker/src/models/load-vae.ts";
import { safetensorsSource } from "../gpu-worker/src/models/sources.ts";
import { LocalEdge } from "../tests/e2e/support/edge.ts";
import type { BuiltTokenizer } from "../tests/e2e/support/tiny-tokenizer.ts";
import { syntheticImage } from "../tests/e2e/support/tiny-tokenizer.ts";
import { WorkerProcess } from "../tests/e2e/support/worker-process.ts";
import {
  createJob,
  jobEvents,
  type Tenant,
  tinyTokenizerOn,
  upload,
  waitForJob,
} from "../tests/e2e/support/world.ts";
import { writeResults } from "./lib/results.ts";

const LATENCY_SAMPLES = 20;
const THROUGHPUT_JOBS = 16;
const IMAGES_PER_JOB = 16;
const TASKS_HELD = 4;
const BATCH_SIZE = 16;

const asked = process.argv.slice(2);
const backends = asked.length > 0 ? asked : ["tensorflow", "webgpu", "wasm", "cpu"];

function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/** Polls for the tokens themselves: the latency ends when a client can download them. */
async function tokensAvailable(edge: LocalEdge, tenant: Tenant, jobId: string): Promise<void> {
  for (;;) {
    const response = await fetch(`${edge.url}/v1/jobs/${jobId}/tokens`, {
      headers: { authorization: `Bearer ${tenant.apiKey}` },
    });
    if (response.ok) {
      readTokenStream(new Uint8Array(await response.arrayBuffer()));
      return;
    }
    await response.arrayBuffer();
    if (response.status !== 409) throw new Error(`tokens of ${jobId}: ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function latency(
  edge: LocalEdge,
  tenant: Tenant,
  tokenizer: string,
  seed: number,
  samples = LATENCY_SAMPLES,
) {
  const ms: number[] = [];
  const inWorker: number[] = [];
  const inQueue: number[] = [];
  for (let i = 0; i < samples; i++) {
    const bytes = await syntheticImage(seed + i);
    const start = performance.now();
    const [id] = await upload(edge, tenant, [{ bytes, format: "png" }]);
    const job = await createJob(edge, tenant, {
      kind: "encode",
      tokenizer,
      inputs: { images: [id] },
    });
    await tokensAvailable(edge, tenant, job.id);
    ms.push(performance.now() - start);
    const events = await jobEvents(edge, tenant, job.id);
    const metrics = events.find((e) => e.type === "metrics");
    inWorker.push(Number(metrics?.data.seconds) * 1000);
    const statusAt = (status: string) =>
      Date.parse(
        events.find((e) => e.type === "status" && e.data.status === status)?.createdAt ?? "",
      );
    inQueue.push(statusAt("running") - statusAt("queued"));
  }
  const sorted = ms.toSorted((a, b) => a - b);
  const p50 = (values: number[]) =>
    quantile(
      values.toSorted((a, b) => a - b),
      0.5,
    );
  return {
    samples: ms.length,
    /** From the job's creation until a worker leased its task, by the edge's clock. */
    queueP50Ms: p50(inQueue),
    /** From lease to written tokens, as the worker measured it (the rest: HTTP, queue, lease). */
    taskP50Ms: p50(inWorker),
    p50Ms: quantile(sorted, 0.5),
    p95Ms: quantile(sorted, 0.95),
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
  };
}

async function throughput(edge: LocalEdge, tenant: Tenant, tokenizer: string, seed: number) {
  const ids: string[][] = [];
  for (let j = 0; j < THROUGHPUT_JOBS; j++) {
    const images = await Promise.all(
      Array.from({ length: IMAGES_PER_JOB }, async (_, i) => ({
        bytes: await syntheticImage(seed + j * IMAGES_PER_JOB + i),
        format: "png" as const,
      })),
    );
    ids.push(await upload(edge, tenant, images));
  }
  const start = performance.now();
  const jobs = await Promise.all(
    ids.map((images) => createJob(edge, tenant, { kind: "encode", tokenizer, inputs: { images } })),
  );
  await Promise.all(
    jobs.map(async (job) => {
      const done = await waitForJob(edge, tenant, job.id, undefined, 600_000);
      if (done.status !== "succeeded") throw new Error(`job ${job.id} ${done.status}`);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const images = THROUGHPUT_JOBS * IMAGES_PER_JOB;
  return { jobs: THROUGHPUT_JOBS, images, seconds, imagesPerSecond: images / seconds };
}

/** The tokenizer's VAE alone on random batches of BATCH_SIZE images, on `backend`, for ≥ 2 s. */
async function bareEncoder(built: BuiltTokenizer, backend: string) {
  await selectBackend(backend as BackendName);
  const spec = built.manifest.vae;
  const weights = spec.weights && built.files.get(spec.weights.path);
  if (!weights) throw new Error("the bench's tokenizer carries its VAE weights");
  const vae = await loadVae(spec, safetensorsSource(weights));
  try {
    const { height, width } = spec.inputResolution;
    const images = Float32Array.from(
      { length: BATCH_SIZE * height * width * 3 },
      () => Math.random() * 2 - 1,
    );
    await vae.encode(images, BATCH_SIZE); // warm-up: compiles the kernels
    let batches = 0;
    const start = performance.now();
    do {
      await vae.encode(images, BATCH_SIZE);
      batches++;
    } while (performance.now() - start < 2000);
    const seconds = (performance.now() - start) / 1000;
    return { batch: BATCH_SIZE, batches, imagesPerSecond: (batches * BATCH_SIZE) / seconds };
  } finally {
    vae.dispose();
    tf.disposeVariables();
  }
}

async function main(): Promise<void> {
  const edge = new LocalEdge();
  await Promise.all([edge.start(), selectBackend("wasm")]);
  const figures: Record<string, unknown> = {
    tokenizer: "tiny test tokenizer: fixture DC-AE, 32×32 → 8×8×8, 128 tokens × 64 codes",
    images: "synthetic 48×40 PNG",
    worker: { tasksHeld: TASKS_HELD, batchSize: BATCH_SIZE },
    backends: {},
  };
  const perBackend = figures.backends as Record<string, unknown>;
  try {
    const { built, id: tokenizer } = await tinyTokenizerOn(edge);
    let seed = 0;
    for (const backend of backends) {
      const tenant = await edge.tenant(`bench-${backend}`);
      const worker = new WorkerProcess(edge, {
        name: `bench-${backend}`,
        workerKey: tenant.workerKey,
        backend,
        tasks: TASKS_HELD,
        batchSize: BATCH_SIZE,
      });
      try {
        const started = await worker.waitFor((l) => l.msg === "revq-worker started", 120_000);
        // Warm-up: loads the tokenizer and compiles the kernels.
        await latency(edge, tenant, tokenizer, seed, 3);
        const lat = await latency(edge, tenant, tokenizer, seed + 1000);
        const thr = await throughput(edge, tenant, tokenizer, seed + 2000);
        seed += 10_000;
        const bare = await bareEncoder(built, backend);
        const shareOfBare = thr.imagesPerSecond / bare.imagesPerSecond;
        perBackend[backend] = {
          device: started.device,
          latency: lat,
          throughput: thr,
          bareEncoder: bare,
          shareOfBare,
        };
        console.log(
          `${backend.padEnd(10)} latency p50 ${lat.p50Ms.toFixed(0)} ms (queue ${lat.queueP50Ms.toFixed(0)} ms, task ${lat.taskP50Ms.toFixed(0)} ms), p95 ${lat.p95Ms.toFixed(0)} ms; ` +
            `throughput ${thr.imagesPerSecond.toFixed(1)} images/s, ${(100 * shareOfBare).toFixed(0)} % of the bare encoder's ${bare.imagesPerSecond.toFixed(1)} (${started.device})`,
        );
      } catch (error) {
        const said = worker.lines.find((l) => l.msg === "revq-worker stopped on an error");
        const why = said ? String((said.error as { message?: string })?.message) : String(error);
        perBackend[backend] = { unavailable: why };
        console.log(`${backend.padEnd(10)} unavailable: ${why}`);
      } finally {
        await worker.stop();
      }
    }
  } finally {
    await edge.dispose();
  }
  console.log(`written to ${writeResults("encode", figures)}`);
}

await main();
