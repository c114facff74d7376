/**
 * A whole dataset to tokens through the local stack: wrangler dev (D1, R2 and its S3 door), the
 * default tokenizer (models/default-tokenizer: 64×64 → 512 tokens of 4096 codes) and real
 * revq-worker processes, for datasets of N small synthetic PNGs.
 *
 * For each N: one dataset encode job (shards of TOKEN_SHARD_SIZE), from its creation until it
 * succeeded, then its whole token stream downloaded.
 *
 * - images/s: N over the time from the POST that creates the job to its success;
 * - edge overhead per image: the time the job spends in the edge and between edge and workers,
 *   not in a worker's own task, per image: the POST that freezes the dataset and creates the
 *   shard jobs, plus, for each shard, the edge's time from its lease to its success (its job's
 *   `running` and `succeeded` events, the edge's clock) less the worker's own time on the task
 *   (its `seconds` metric: from the lease's arrival to the shard written, model time included),
 *   which leaves the lease answer, the object grants, the complete call with its check of the
 *   shard, the settling of the dataset job and the HTTP between; plus the whole-stream download.
 *   It must stay flat as N grows: nothing the edge does per image grows with the dataset;
 * - 1 worker against 2, on the same N (each worker holds one task at a time).
 *
 *   npm run bench:dataset-encode                       # N = 500, 2000, 8000; workers at 2000
 *   npm run bench:dataset-encode -- --sizes 500,2000 --compare 500
 *
 * Results: bench/results/dataset-encode.json.
 */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  canonicalJson,
  manifestHash,
  readTokenStreamHeader,
  TOKEN_SHARD_SIZE,
  tokenStreamByteLength,
} from "@revq/shared";
import { packTar } from "modern-tar";
import { readManifest } from "../scripts/start/tokenizer-folder.ts";
import { LocalEdge, ROOT } from "../tests/e2e/support/edge.ts";
import { syntheticImage } from "../tests/e2e/support/tiny-tokenizer.ts";
import { WorkerProcess } from "../tests/e2e/support/worker-process.ts";
import { jobEvents, registerTokenizer, type Tenant } from "../tests/e2e/support/world.ts";
import { writeResults } from "./lib/results.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "500,2000,8000" },
    compare: { type: "string", default: "2000" },
    "shard-size": { type: "string", default: String(TOKEN_SHARD_SIZE) },
  },
});
const SIZES = values.sizes.split(",").map(Number);
const COMPARE = Number(values.compare);
const SHARD_SIZE = Number(values["shard-size"]);
/** Images per request adding to a dataset: the edge's default MAX_DATASET_ADD_IMAGES. */
const ADD_BATCH = 500;
const TOKENIZER_DIR = join(ROOT, "models", "default-tokenizer");

/** The default tokenizer's folder, as the edge registers it (npm start does the same). */
async function defaultTokenizer() {
  const manifest = readManifest(TOKENIZER_DIR);
  const refs = [manifest.files.stats, manifest.files.codebook, manifest.files.rectifier];
  const files = new Map(
    [...refs, manifest.vae.weights]
      .filter((f) => f !== undefined)
      .map((f) => [f.path, new Uint8Array(readFileSync(join(TOKENIZER_DIR, f.path)))]),
  );
  const hash = await manifestHash(manifest);
  const manifestBytes = new TextEncoder().encode(canonicalJson(manifest));
  return { manifest, manifestBytes, hash, files };
}

/** An upload dataset of `count` synthetic PNGs (seeds from `seed`), added 500 at a time. */
async function datasetOf(edge: LocalEdge, tenant: Tenant, count: number, seed: number) {
  const dataset = await edge.api<{ id: string }>("POST", "/v1/datasets", tenant.apiKey, {
    name: `bench-${count}-${seed}`,
  });
  for (let start = 0; start < count; start += ADD_BATCH) {
    const n = Math.min(ADD_BATCH, count - start);
    const entries = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const body = await syntheticImage(seed + start + i);
        return { header: { name: `${start + i}.png`, size: body.length }, body };
      }),
    );
    await edge.api(
      "POST",
      `/v1/datasets/${dataset.id}/images`,
      tenant.apiKey,
      await packTar(entries),
      {
        "content-type": "application/x-tar",
      },
    );
  }
  return dataset.id;
}

type JobView = {
  id: string;
  status: string;
  shardJobs: string[];
  error: unknown;
  result: { tokens: { bytes: number } };
};

async function waitFor(edge: LocalEdge, tenant: Tenant, id: string): Promise<JobView> {
  for (;;) {
    const job = await edge.api<JobView>("GET", `/v1/jobs/${id}`, tenant.apiKey);
    if (!["queued", "running"].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The edge's time on one shard job outside its worker's task, in ms. */
async function shardOverheadMs(edge: LocalEdge, tenant: Tenant, shardJob: string) {
  const events = await jobEvents(edge, tenant, shardJob);
  const at = (status: string) =>
    Date.parse(
      events.findLast((e) => e.type === "status" && e.data.status === status)?.createdAt ?? "",
    );
  const metrics = events.findLast((e) => e.type === "metrics");
  const workerMs = Number(metrics?.data.seconds) * 1000;
  return { edgeMs: at("succeeded") - at("running") - workerMs, workerMs };
}

/** One dataset encode job of `count` images on the tenant's workers: its figures. */
async function encodeDataset(edge: LocalEdge, tenant: Tenant, count: number, seed: number) {
  const dataset = await datasetOf(edge, tenant, count, seed);
  const created = performance.now();
  const job = await edge.api<JobView>("POST", "/v1/jobs", tenant.apiKey, {
    kind: "encode",
    inputs: { dataset, shardSize: SHARD_SIZE },
  });
  const createMs = performance.now() - created;
  const done = await waitFor(edge, tenant, job.id);
  const seconds = (performance.now() - created) / 1000;
  if (done.status !== "succeeded")
    throw new Error(`job ${job.id} ${done.status}: ${JSON.stringify(done.error)}`);
  const downloadStart = performance.now();
  const response = await fetch(`${edge.url}/v1/jobs/${job.id}/tokens`, {
    headers: { authorization: `Bearer ${tenant.apiKey}` },
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const downloadMs = performance.now() - downloadStart;
  const header = readTokenStreamHeader(bytes.subarray(0, 64));
  if (header.recordCount !== count || tokenStreamByteLength(header) !== bytes.length) {
    throw new Error(
      `job ${job.id}'s stream holds ${header.recordCount} records in ${bytes.length} bytes`,
    );
  }
  const shards = await Promise.all(job.shardJobs.map((id) => shardOverheadMs(edge, tenant, id)));
  const shardEdgeMs = shards.reduce((sum, s) => sum + s.edgeMs, 0);
  const workerMs = shards.reduce((sum, s) => sum + s.workerMs, 0);
  const overheadMs = createMs + shardEdgeMs + downloadMs;
  return {
    images: count,
    shards: job.shardJobs.length,
    seconds,
    imagesPerSecond: count / seconds,
    edgeOverheadMsPerImage: overheadMs / count,
    parts: {
      createMs,
      shardEdgeMsPerImage: shardEdgeMs / count,
      downloadMs,
      streamBytes: bytes.length,
      workerMsPerImage: workerMs / count,
    },
  };
}

async function withWorkers<T>(
  edge: LocalEdge,
  name: string,
  workers: number,
  run: (tenant: Tenant) => Promise<T>,
): Promise<T> {
  const tenant = await edge.tenant(name);
  const processes = Array.from(
    { length: workers },
    (_, i) =>
      new WorkerProcess(edge, { name: `${name}-${i}`, workerKey: tenant.workerKey, tasks: 1 }),
  );
  try {
    await Promise.all(
      processes.map((w) => w.waitFor((l) => l.msg === "revq-worker started", 120_000)),
    );
    return await run(tenant);
  } finally {
    await Promise.all(processes.map((w) => w.stop()));
  }
}

async function main(): Promise<void> {
  const tokenizer = await defaultTokenizer();
  // Jobs name no tokenizer: the deployment's default is the one they use.
  const edge = new LocalEdge({ DEFAULT_TOKENIZER: tokenizer.hash });
  await edge.start();
  const load = { before: loadavg() };
  try {
    await registerTokenizer(edge, tokenizer);
    const bySize: unknown[] = [];
    // Other pixels in every dataset (its listing is new anyway: uploads are keyed by their id).
    let seed = 1;
    const nextSeed = () => {
      seed += 100_000;
      return seed;
    };
    await withWorkers(edge, "bench-sizes", 2, async (tenant) => {
      // Warm-up: both workers load the tokenizer and compile their kernels.
      await encodeDataset(edge, tenant, 2 * SHARD_SIZE, nextSeed());
      for (const n of SIZES) {
        const figures = await encodeDataset(edge, tenant, n, nextSeed());
        bySize.push(figures);
        console.log(
          `N ${String(n).padStart(5)}: ${figures.imagesPerSecond.toFixed(1)} images/s on 2 workers, edge overhead ${figures.edgeOverheadMsPerImage.toFixed(2)} ms/image (${figures.shards} shards, ${figures.seconds.toFixed(1)} s)`,
        );
      }
    });
    const scaling: Record<string, unknown> = {};
    for (const workers of [1, 2]) {
      scaling[workers] = await withWorkers(edge, `bench-w${workers}`, workers, async (tenant) => {
        await encodeDataset(edge, tenant, 2 * SHARD_SIZE, nextSeed());
        return encodeDataset(edge, tenant, COMPARE, nextSeed());
      });
    }
    const one = scaling[1] as { imagesPerSecond: number };
    const two = scaling[2] as { imagesPerSecond: number };
    const speedup = two.imagesPerSecond / one.imagesPerSecond;
    console.log(
      `N ${COMPARE}: 1 worker ${one.imagesPerSecond.toFixed(1)} images/s, 2 workers ${two.imagesPerSecond.toFixed(1)} images/s: ${speedup.toFixed(2)}×`,
    );
    const file = writeResults("dataset-encode", {
      tokenizer: `${tokenizer.manifest.name} (${tokenizer.hash})`,
      images: "synthetic 48×40 PNG, an upload dataset",
      shardSize: SHARD_SIZE,
      edgeOverhead:
        "per image: the job's creation (freezing the dataset, creating the shard jobs) + for each shard, its lease→success time on the edge's clock less the worker's own task seconds + the whole-stream download",
      bySize,
      workers: { images: COMPARE, one: scaling[1], two: scaling[2], speedup },
      load: { ...load, after: loadavg() },
    });
    console.log(`wrote ${file}`);
  } finally {
    await edge.dispose();
  }
}

await main();
