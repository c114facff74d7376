/**
 * The world of the extract and train task tests: a bucket in memory holding the tiny test
 * tokenizer and datasets of synthetic images (their files and frozen listings, as the edge
 * writes them), real pipelines on it, and task contexts that record what a task reports.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bucketKeys,
  type DatasetRef,
  encodeDatasetListing,
  type LeasedTask,
  type Progress,
  sha256Hex,
  type TaskPayload,
  type TokenizerRef,
  vaeHash,
} from "@revq/shared";
import { TokenizerCache } from "../../../gpu-worker/src/cache.ts";
import { createLogger } from "../../../gpu-worker/src/log.ts";
import { Batcher } from "../../../gpu-worker/src/pipeline/batcher.ts";
import { TokenizerStore } from "../../../gpu-worker/src/pipeline/tokenizer.ts";
import type { Bucket } from "../../../gpu-worker/src/storage.ts";
import type { Pipelines } from "../../../gpu-worker/src/tasks/context.ts";
import { taskRunner } from "../../../gpu-worker/src/tasks/index.ts";
import type { TaskContext } from "../../../gpu-worker/src/worker.ts";
import type { BuiltTokenizer } from "../../e2e/support/tiny-tokenizer.ts";
import type { MemoryBucket } from "./memory-bucket.ts";

export const TENANT = "ten_00000000000000000000000000";

/** Latent shards of 8 images: the tests' 22 images make 3 (8, 8, 6). */
export const SHARD_SIZE = 8;

/**
 * Training parameters small enough for a test (the tiny VAE's 4×4×4 latents): 22 images are 2
 * held out and 20 to train in batches of 8. The tests add the epochs.
 */
export const TINY_TRAINING = {
  tokens: 128,
  codes: 16,
  batchSize: 8,
  seed: 2,
  rectifier: { channels: 16, blocks: 1, headDim: 8, multiscales: [5] },
};
const dirs: string[] = [];

/** Removes the cache folders pipelines() made (afterAll). */
export function removeWorkFolders(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A tokenizer in the bucket as the edge keeps a registered one. */
export function putTokenizer(bucket: MemoryBucket, built: BuiltTokenizer): TokenizerRef {
  bucket.objects.set(bucketKeys.tokenizerManifest(built.hash), built.manifestBytes);
  for (const [path, bytes] of built.files)
    bucket.objects.set(bucketKeys.tokenizerFile(built.hash, path), bytes);
  return {
    id: `tok_${built.hash.slice(0, 26)}`,
    manifestHash: built.hash,
    manifestKey: bucketKeys.tokenizerManifest(built.hash),
    filesPrefix: bucketKeys.tokenizerFile(built.hash, ""),
  };
}

/**
 * A worker's pipelines on `bucket`: its own tokenizer cache, device batches of 4 (or
 * `batchSize`), VAEs without weights looked for in `modelsDir` (by default the cache's folder).
 */
export function pipelines(
  bucket: MemoryBucket,
  { batchSize = 4, modelsDir }: { batchSize?: number; modelsDir?: string } = {},
): WorldPipelines {
  const dir = mkdtempSync(join(tmpdir(), "revq-train-world-"));
  dirs.push(dir);
  const log = createLogger({ format: "json", write: () => undefined });
  return {
    bucket,
    tokenizers: new TokenizerStore(new TokenizerCache(dir, log), log, {
      modelsDir: modelsDir ?? dir,
    }),
    batcher: new Batcher(batchSize),
    batchSize,
  };
}

/** A worker's pipelines with the one bucket every task of this world sees. */
export type WorldPipelines = Pipelines & { bucket: MemoryBucket };

/** The worker's task runner, every task given the world's bucket as its own. */
export function runTask(p: Pipelines & { bucket: Bucket }) {
  const run = taskRunner(p);
  return (task: LeasedTask, context: Omit<TaskContext, "bucket">) =>
    run(task, { ...context, bucket: p.bucket });
}

/** A task context that records the progress, metric sets and log lines the task reports. */
export function context(controller = new AbortController()) {
  const progress: Progress[] = [];
  const stages: string[] = [];
  const metrics: Record<string, number>[] = [];
  const logs: string[] = [];
  const ctx: Omit<TaskContext, "bucket"> = {
    signal: controller.signal,
    progress: (p) => {
      progress.push(p);
      stages.push(p.stage ?? "");
    },
    metrics: (m) => metrics.push(m),
    log: createLogger({ format: "json", write: (line: string) => logs.push(line) }),
  };
  return { ctx, progress, stages, metrics, logs };
}

/**
 * `images` as a dataset of the tenant's files, frozen into a listing in the bucket, its latents
 * under `vae`'s VAE cut into shards of `shardSize` (the edge's side of a training, in small).
 */
export async function putDataset(
  bucket: MemoryBucket,
  images: Uint8Array[],
  vae: BuiltTokenizer,
  shardSize: number,
  folder = "set",
): Promise<DatasetRef> {
  const entries = await Promise.all(
    images.map(async (bytes, i) => {
      const key = bucketKeys.tenantFiles(TENANT, `${folder}/${String(i).padStart(4, "0")}.png`);
      bucket.objects.set(key, bytes);
      return { key, etag: `"${await sha256Hex(bytes)}"` };
    }),
  );
  const { bytes, hash } = await encodeDatasetListing(entries);
  const listing = bucketKeys.datasetListing(TENANT, hash);
  bucket.objects.set(listing, bytes);
  return {
    listing,
    listingHash: hash,
    count: images.length,
    latents: bucketKeys.latents(TENANT, hash, await vaeHash(vae.manifest.vae), shardSize),
    shardSize,
  };
}

let counter = 0;
const id = (prefix: string) => `${prefix}_${String(++counter).padStart(26, "0")}`;

/** A leased task of a fresh job (or of `jobId`, for a task that comes back). */
export function leased(payload: TaskPayload, jobId = id("job")): LeasedTask {
  return {
    taskId: id("tsk"),
    jobId,
    kind: payload.kind,
    attempt: 1,
    maxAttempts: 5,
    leaseId: "lse_1",
    leaseExpiresAt: new Date().toISOString(),
    objects: [],
    payload,
  };
}
