/**
 * The extract task, and latents shared between tasks: extract tasks and a train task on the same
 * listing and VAE fill one set of shards between them, each shard encoded once; a damaged shard,
 * or one of another listing, is extracted again; a listing that is not the frozen one fails the
 * task for good. On a bucket in memory with the tiny test tokenizer's VAE (wasm), VAE calls
 * counted on the worker's loaded tokenizer.
 */
import {
  type DatasetRef,
  latentShardName,
  parseSafetensors,
  readTensor,
  type TaskPayload,
  type TokenizerRef,
  vaeHash,
} from "@revq/shared";
import { afterAll, beforeAll, describe, expect, it, type MockInstance, vi } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { decodeImage } from "../../gpu-worker/src/images/codec.ts";
import { TaskError } from "../../gpu-worker/src/task-error.ts";
import {
  type BuiltTokenizer,
  buildTinyTokenizer,
  RESOLUTION,
  syntheticImage,
} from "../e2e/support/tiny-tokenizer.ts";
import { MemoryBucket } from "./worker-helpers/memory-bucket.ts";
import {
  context,
  leased,
  pipelines,
  putDataset,
  putTokenizer,
  removeWorkFolders,
  runTask,
  SHARD_SIZE,
  TENANT,
  TINY_TRAINING,
} from "./worker-helpers/train-world.ts";

let base: BuiltTokenizer;
let images: Uint8Array[];

/** One epoch of the train task test's small run. */
const PARAMETERS = { ...TINY_TRAINING, epochs: 1 };
/** Held-out images the train task's image probe runs through the VAE (on top of extraction). */
const PROBE = 2;

beforeAll(async () => {
  await selectBackend("wasm");
  base = await buildTinyTokenizer();
  images = await Promise.all(Array.from({ length: 22 }, (_, i) => syntheticImage(700 + i)));
}, 60_000);

afterAll(removeWorkFolders);

/** A worker on `bucket` whose VAE calls are counted, in images encoded. */
async function worker(bucket: MemoryBucket, ref: TokenizerRef) {
  const p = pipelines(bucket);
  // The loaded tokenizer stays in the worker's store, so every later task uses this VAE.
  const tokenizer = await p.tokenizers.with(ref, { bucket: p.bucket }, async (t) => t);
  const spy: MockInstance = vi.spyOn(tokenizer.vae, "encode");
  let seen = 0;
  return {
    p,
    run: (payload: TaskPayload, ctx = context()) => runTask(p)(leased(payload), ctx.ctx),
    /** Images through the VAE since the last call. */
    encoded() {
      const total = spy.mock.calls.reduce((sum, call) => sum + (call[1] as number), 0);
      const since = total - seen;
      seen = total;
      return since;
    },
  };
}

const extract = (vae: TokenizerRef, dataset: DatasetRef, shards: number[]): TaskPayload => ({
  kind: "extract",
  vae,
  dataset,
  shards,
});

let jobs = 0;
const train = (vae: TokenizerRef, dataset: DatasetRef): TaskPayload => ({
  kind: "train",
  base: vae,
  dataset,
  parameters: PARAMETERS,
  output: {
    checkpoints: `tenants/${TENANT}/jobs/job_${String(++jobs).padStart(26, "0")}/checkpoints/`,
  },
});

async function failure(work: Promise<unknown>): Promise<TaskError> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskError);
  return error as TaskError;
}

describe("the extract task", () => {
  it("writes the shards it lists, each the VAE's latents of its images, and keeps them when it comes back", async () => {
    const bucket = new MemoryBucket();
    const ref = putTokenizer(bucket, base);
    const dataset = await putDataset(bucket, images, base, SHARD_SIZE);
    const w = await worker(bucket, ref);
    const ctx = context();
    const outcome = await w.run(extract(ref, dataset, [2, 0]), ctx);
    expect(outcome.result).toEqual({ kind: "extract" });
    expect(outcome.metrics).toMatchObject({ shards: 2, reused: 0, extracted: 2, images: 14 });
    // Each encoded shard's images/s, by index.
    expect(outcome.metrics?.["imagesPerSecond.2"]).toBeGreaterThan(0);
    expect(outcome.metrics?.["imagesPerSecond.0"]).toBeGreaterThan(0);
    expect(w.encoded()).toBe(14);
    expect([...bucket.objects.keys()].filter((k) => k.startsWith(dataset.latents))).toEqual([
      dataset.latents + latentShardName(2),
      dataset.latents + latentShardName(0),
    ]);
    // Progress per VAE batch (4 images), over the images of the listed shards.
    expect(
      ctx.progress.filter((p) => p.stage?.startsWith("extracting")).map((p) => p.done),
    ).toEqual([4, 6, 6, 10, 14, 14]);
    expect(ctx.stages).toContain("extracting latents: shard 0 (2 of 2)");

    const shard = parseSafetensors(
      bucket.objects.get(dataset.latents + latentShardName(2)) as Uint8Array,
    );
    expect(shard.metadata).toMatchObject({
      format: "revq.latent-shard/v1",
      first: "16",
      latentShape: "8,8,8",
      identity: `${dataset.listingHash}/${await vaeHash(base.manifest.vae)}`,
    });
    const latents = readTensor(shard, "latents");
    expect(latents.shape).toEqual([6, 512]);
    // Image 17 (the shard's second) through the VAE alone gives the same latent.
    const alone = await w.p.tokenizers.with(ref, { bucket }, async (t) =>
      t.vae.encode(await decodeImage(images[17], RESOLUTION), 1),
    );
    w.encoded();
    const stored = (latents.data as Float32Array).subarray(512, 1024);
    expect(Math.max(...stored.map((v, i) => Math.abs(v - alone[i])))).toBeLessThan(1e-4);

    const again = await w.run(extract(ref, dataset, [0, 2]));
    expect(again.metrics).toMatchObject({ shards: 2, reused: 2, extracted: 0 });
    expect(Object.keys(again.metrics ?? {}).filter((k) => k.startsWith("imagesPerSecond"))).toEqual(
      [],
    );
    expect(w.encoded()).toBe(0);
  });

  it("stops when its job is cancelled, keeping the shards it finished", async () => {
    const bucket = new MemoryBucket();
    const ref = putTokenizer(bucket, base);
    const dataset = await putDataset(bucket, images, base, SHARD_SIZE);
    const w = await worker(bucket, ref);
    const controller = new AbortController();
    const ctx = context(controller);
    const report = ctx.ctx.progress;
    ctx.ctx.progress = (p) => {
      report(p);
      // The first shard done (8 images), the second's first batch under way.
      if (p.done === 12) controller.abort(new Error("cancelled"));
    };
    await expect(w.run(extract(ref, dataset, [0, 1, 2]), ctx)).rejects.toThrow("cancelled");
    // Batches already loaded when the job was cancelled may still be encoded (pipeline/overlap.ts
    // keeps two ahead, of 4 images here), never written.
    const encoded = w.encoded();
    expect(encoded).toBeGreaterThanOrEqual(12);
    expect(encoded).toBeLessThanOrEqual(12 + 2 * 4);
    expect([...bucket.objects.keys()].filter((k) => k.startsWith(dataset.latents))).toEqual([
      dataset.latents + latentShardName(0),
    ]);
  });

  it("extracts again a damaged shard, another listing's, and one in the wrong place", async () => {
    const bucket = new MemoryBucket();
    const ref = putTokenizer(bucket, base);
    const dataset = await putDataset(bucket, images, base, SHARD_SIZE);
    const other = await putDataset(bucket, images.toReversed(), base, SHARD_SIZE, "other");
    const w = await worker(bucket, ref);
    await w.run(extract(ref, dataset, [0, 1, 2]));
    await w.run(extract(ref, other, [1]));
    expect(w.encoded()).toBe(30);
    const key = (d: DatasetRef, i: number) => d.latents + latentShardName(i);
    const shard0 = bucket.objects.get(key(dataset, 0)) as Uint8Array;
    // Shard 2's place: this listing's shard 0 (the right identity, the wrong images).
    bucket.objects.set(key(dataset, 2), shard0);
    bucket.objects.set(key(dataset, 0), shard0.subarray(0, shard0.length - 4));
    // Same shape, same first image and count: only the identity tells it is another listing's.
    bucket.objects.set(key(dataset, 1), bucket.objects.get(key(other, 1)) as Uint8Array);

    const repaired = await w.run(extract(ref, dataset, [0, 1, 2]));
    expect(repaired.metrics).toMatchObject({ reused: 0, extracted: 3 });
    expect(w.encoded()).toBe(22);
    expect(bucket.objects.get(key(dataset, 0))?.length).toBe(shard0.length);
    expect(bucket.objects.get(key(dataset, 1))).not.toEqual(bucket.objects.get(key(other, 1)));
  });

  it("fails for good on a listing that is not the frozen one, a shard out of range, an image that does not decode", async () => {
    const bucket = new MemoryBucket();
    const ref = putTokenizer(bucket, base);
    const dataset = await putDataset(bucket, images, base, SHARD_SIZE);
    const w = await worker(bucket, ref);

    const listing = bucket.objects.get(dataset.listing) as Uint8Array;
    const tampered = new TextEncoder().encode(
      new TextDecoder().decode(listing).replace("0001.png", "0002.png"),
    );
    bucket.objects.set(dataset.listing, tampered);
    for (const payload of [extract(ref, dataset, [0]), train(ref, dataset)]) {
      const error = await failure(w.run(payload));
      expect([error.code, error.retryable]).toEqual(["dataset-listing-invalid", false]);
      expect(error.message).toMatch(
        new RegExp(
          `^The dataset listing at ${dataset.listing} is unusable: dataset: the dataset listing's SHA-256 is [0-9a-f]{64}, not ${dataset.listingHash}$`,
        ),
      );
    }
    bucket.objects.set(dataset.listing, listing);

    const miscounted = await failure(w.run(extract(ref, { ...dataset, count: 23 }, [0])));
    expect([miscounted.code, miscounted.message]).toEqual([
      "dataset-listing-invalid",
      `The dataset listing at ${dataset.listing} holds 22 images, not the task's 23.`,
    ]);
    const outside = await failure(w.run(extract(ref, dataset, [1, 3])));
    expect([outside.code, outside.retryable, outside.message]).toEqual([
      "shard-out-of-range",
      false,
      "Shard 3 is not one of the dataset's 3 (22 images, 8 a shard).",
    ]);
    const missing = await failure(
      w.run(extract(ref, { ...dataset, listing: `${dataset.listing}x` }, [0])),
    );
    expect([missing.code, missing.retryable]).toEqual(["input-missing", false]);

    const imageKey = `tenants/${TENANT}/files/set/0009.png`;
    bucket.objects.set(imageKey, new TextEncoder().encode("not an image"));
    const undecodable = await failure(w.run(extract(ref, dataset, [1])));
    expect([undecodable.code, undecodable.retryable]).toEqual(["image-undecodable", false]);
    expect(undecodable.message).toMatch(
      new RegExp(`^image 9 \\(${imageKey}\\) could not be decoded as an image: `),
    );
    expect(bucket.objects.has(dataset.latents + latentShardName(1))).toBe(false);
  });
});

describe("latents shared by extract and train tasks", () => {
  it("a train task reads the shards extract tasks wrote and extracts only the rest; a damaged one again", async () => {
    const bucket = new MemoryBucket();
    const ref = putTokenizer(bucket, base);
    const dataset = await putDataset(bucket, images, base, SHARD_SIZE);
    // Two workers: one runs the extract task of the first two shards, the other the training.
    const extractor = await worker(bucket, ref);
    const trainer = await worker(bucket, ref);
    await extractor.run(extract(ref, dataset, [0, 1]));
    expect(extractor.encoded()).toBe(16);

    const first = context();
    const trained = await trainer.run(train(ref, dataset), first);
    expect(trained.result.kind).toBe("train");
    expect(first.metrics[0]).toMatchObject({
      latentShards: 3,
      latentShardsReused: 2,
      latentShardsExtracted: 1,
    });
    expect(first.logs.some((l) => l.includes('"msg":"latents ready"'))).toBe(true);
    expect(first.stages).toContain("latents: 2 shards reused, 1 extracted");
    expect(trainer.encoded()).toBe(6 + PROBE);

    // A second training on the same dataset extracts nothing; with shard 1 damaged, only it.
    const second = context();
    await trainer.run(train(ref, dataset), second);
    expect(second.metrics[0]).toMatchObject({ latentShardsReused: 3, latentShardsExtracted: 0 });
    expect(trainer.encoded()).toBe(PROBE);
    const key = dataset.latents + latentShardName(1);
    bucket.objects.set(key, (bucket.objects.get(key) as Uint8Array).subarray(100));
    const third = context();
    await trainer.run(train(ref, dataset), third);
    expect(third.metrics[0]).toMatchObject({ latentShardsReused: 2, latentShardsExtracted: 1 });
    expect(trainer.encoded()).toBe(8 + PROBE);
  }, 60_000);
});
