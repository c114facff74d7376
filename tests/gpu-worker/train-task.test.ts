/**
 * The train task on a bucket in memory, with the tiny test tokenizer's VAE: images in, a
 * tokenizer's files in the bucket and its manifest out; a task stopped after an epoch resumes
 * from its checkpoint in a new worker and ends where a straight run ends.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bucketKeys,
  canonicalJson,
  type LeasedTask,
  manifestHash,
  parseManifest,
  readTokenStream,
  type TokenizerRef,
} from "@revq/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { TokenizerCache } from "../../gpu-worker/src/cache.ts";
import { createLogger } from "../../gpu-worker/src/log.ts";
import { Batcher } from "../../gpu-worker/src/pipeline/batcher.ts";
import { TokenizerStore } from "../../gpu-worker/src/pipeline/tokenizer.ts";
import type { Pipelines } from "../../gpu-worker/src/tasks/context.ts";
import { TaskError } from "../../gpu-worker/src/tasks/errors.ts";
import { taskRunner } from "../../gpu-worker/src/tasks/index.ts";
import type { TaskContext } from "../../gpu-worker/src/worker.ts";
import {
  type BuiltTokenizer,
  buildTinyTokenizer,
  syntheticImage,
} from "../e2e/support/tiny-tokenizer.ts";
import { MemoryBucket } from "./worker-helpers/memory-bucket.ts";

const TENANT = "ten_00000000000000000000000000";
const dirs: string[] = [];
let base: BuiltTokenizer;
let images: Uint8Array[];

// 22 images: 2 held out, 20 to train in batches of 8 (2 steps an epoch); 3 epochs.
const PARAMETERS = {
  name: "trained-in-a-test",
  tokens: 128,
  codes: 16,
  epochs: 3,
  batchSize: 8,
  seed: 2,
  rectifier: { channels: 16, blocks: 1, headDim: 8, multiscales: [5] },
};

beforeAll(async () => {
  await selectBackend("wasm");
  base = await buildTinyTokenizer();
  images = await Promise.all(Array.from({ length: 22 }, (_, i) => syntheticImage(900 + i)));
}, 60_000);

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function put(
  bucket: MemoryBucket,
  built: { hash: string; manifestBytes: Uint8Array; files: Map<string, Uint8Array> },
): TokenizerRef {
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

function pipelines(bucket: MemoryBucket): Pipelines {
  const dir = mkdtempSync(join(tmpdir(), "revq-train-task-"));
  dirs.push(dir);
  const log = createLogger({ format: "json", write: () => undefined });
  return {
    bucket,
    tokenizers: new TokenizerStore(new TokenizerCache(dir, bucket, log), log, { modelsDir: dir }),
    batcher: new Batcher(4),
    batchSize: 4,
  };
}

function context(controller = new AbortController()) {
  const stages: string[] = [];
  const metrics: Record<string, number>[] = [];
  const logs: string[] = [];
  const ctx: TaskContext = {
    signal: controller.signal,
    progress: (p) => stages.push(p.stage ?? ""),
    metrics: (m) => metrics.push(m),
    log: createLogger({ format: "json", write: (line: string) => logs.push(line) }),
  };
  return { ctx, stages, metrics, logs };
}

const JOB = "job_00000000000000000000000001";

function trainTask(
  bucket: MemoryBucket,
  parameters: Record<string, unknown>,
  count = images.length,
  withBase = true,
): LeasedTask {
  const ref = put(bucket, base);
  const inputs = images.slice(0, count).map((bytes, i) => {
    const imageId = `img_${String(i).padStart(26, "0")}`;
    const key = bucketKeys.image(TENANT, imageId);
    bucket.objects.set(key, bytes);
    return { imageId, bucketKey: key, format: "png" as const, width: 48, height: 40 };
  });
  return {
    taskId: "tsk_00000000000000000000000001",
    jobId: JOB,
    kind: "train",
    attempt: 1,
    maxAttempts: 5,
    leaseId: "lse_1",
    leaseExpiresAt: new Date().toISOString(),
    payload: {
      kind: "train",
      ...(withBase ? { base: ref } : {}),
      images: inputs,
      parameters,
      output: { checkpoints: bucketKeys.jobCheckpoints(TENANT, JOB) },
    },
  };
}

const codebookKey = (hash: string) => bucketKeys.tokenizerFile(hash, "codebook.safetensors");

describe("the train task", () => {
  it("trains on the job's images and leaves a tokenizer the worker can encode with", async () => {
    const bucket = new MemoryBucket();
    const p = pipelines(bucket);
    const { ctx, stages, metrics } = context();
    const outcome = await taskRunner(p)(trainTask(bucket, PARAMETERS), ctx);
    if (outcome.result.kind !== "train") throw new Error("not a train result");
    const manifest = parseManifest(outcome.result.manifest);
    const hash = await manifestHash(manifest);
    expect(manifest.name).toBe("trained-in-a-test");
    expect(manifest.vae.weights).toEqual({ ...base.manifest.vae.weights, path: "vae.safetensors" });
    expect(manifest.training).toMatchObject({
      epochs: 3,
      batchSize: 8,
      seed: 2,
      dataset: { images: 22 },
    });
    for (const ref of [
      manifest.files.stats,
      manifest.files.codebook,
      manifest.files.rectifier,
      manifest.vae.weights,
    ]) {
      expect(bucket.objects.get(bucketKeys.tokenizerFile(hash, ref?.path as string))?.length).toBe(
        ref?.bytes,
      );
    }
    expect(outcome.metrics?.epoch).toBe(3);
    expect(outcome.metrics?.valRectifiedMse).toBeGreaterThan(0);
    // One metric set per epoch for the job's events, so a client can follow the curve.
    expect(metrics.map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(metrics.every((m) => m.lossQuantizer > 0 && m.valRectifiedMse > 0)).toBe(true);
    expect(stages).toContain("extracting latents");
    expect(stages).toContain("epoch 1/3");
    expect(
      stages.some((s) => /^epoch 3\/3 · after epoch 2: loss [\d.]+\+[\d.]+, val /.test(s)),
    ).toBe(true);
    expect(stages.at(-2)).toMatch(/^after epoch 3: loss /);
    const prefix = bucketKeys.jobCheckpoints(TENANT, JOB);
    expect(bucket.objects.has(`${prefix}state/checkpoint.json`)).toBe(true);
    expect(
      [...bucket.objects.keys()].filter((k) => k.startsWith(`${prefix}latents/`)),
    ).toHaveLength(1);

    // The edge would store the manifest; then the new tokenizer encodes like any other.
    bucket.objects.set(
      bucketKeys.tokenizerManifest(hash),
      new TextEncoder().encode(canonicalJson(manifest)),
    );
    const ref = {
      id: "tok_new",
      manifestHash: hash,
      manifestKey: bucketKeys.tokenizerManifest(hash),
      filesPrefix: bucketKeys.tokenizerFile(hash, ""),
    };
    const encodeJob = "job_00000000000000000000000002";
    const tokensKey = bucketKeys.jobTokens(TENANT, encodeJob);
    await taskRunner(p)(
      {
        taskId: "tsk_00000000000000000000000002",
        jobId: encodeJob,
        kind: "encode",
        attempt: 1,
        maxAttempts: 5,
        leaseId: "lse_2",
        leaseExpiresAt: new Date().toISOString(),
        payload: {
          kind: "encode",
          tokenizer: ref,
          images: [
            {
              imageId: "img_00000000000000000000000000",
              bucketKey: bucketKeys.image(TENANT, "img_00000000000000000000000000"),
              format: "png",
              width: 48,
              height: 40,
            },
          ],
          output: { tokens: tokensKey },
        },
      },
      context().ctx,
    );
    const stream = readTokenStream(bucket.objects.get(tokensKey) as Uint8Array);
    expect(stream.header.tokenizerHash).toBe(hash);
    expect(stream.header.codesPerGroup).toBe(16);
  }, 60_000);

  it("resumes a stopped task from its last checkpoint in a new worker, ending as a straight run", async () => {
    const straight = new MemoryBucket();
    const done = await taskRunner(pipelines(straight))(
      trainTask(straight, PARAMETERS),
      context().ctx,
    );
    const straightHash = await manifestHash(
      parseManifest((done.result as { manifest: unknown }).manifest),
    );

    const bucket = new MemoryBucket();
    const task = trainTask(bucket, PARAMETERS);
    const controller = new AbortController();
    const first = context(controller);
    const stopAfterEpoch1 = first.ctx.progress;
    first.ctx.progress = (p) => {
      stopAfterEpoch1(p);
      if (p.stage?.startsWith("after epoch 1:")) controller.abort(new Error("lease lost"));
    };
    await expect(taskRunner(pipelines(bucket))(task, first.ctx)).rejects.toThrow();
    const index = JSON.parse(
      new TextDecoder().decode(
        bucket.objects.get(
          `${task.payload.kind === "train" ? task.payload.output.checkpoints : ""}state/checkpoint.json`,
        ),
      ),
    );
    expect(index.epoch).toBe(1);

    const second = context();
    const outcome = await taskRunner(pipelines(bucket))(task, second.ctx);
    expect(
      second.logs.some((l) => l.includes("resuming training") && l.includes('"afterEpoch":1')),
    ).toBe(true);
    expect(second.stages.filter((s) => s.startsWith("epoch "))[0]).toMatch(
      /^epoch 2\/3 · after epoch 1: /,
    );
    const hash = await manifestHash(
      parseManifest((outcome.result as { manifest: unknown }).manifest),
    );
    // Same training, bit for bit: the codebook and rectifier files are identical (the manifests
    // differ only in when the last epoch ended).
    expect(bucket.objects.get(codebookKey(hash))).toEqual(
      straight.objects.get(codebookKey(straightHash)),
    );
    const rect = (b: MemoryBucket, h: string) =>
      b.objects.get(bucketKeys.tokenizerFile(h, "rectifier.safetensors"));
    expect(rect(bucket, hash)).toEqual(rect(straight, straightHash));
  }, 90_000);

  it("fails with a reason that says what to change", async () => {
    const bucket = new MemoryBucket();
    const run = (task: LeasedTask) => taskRunner(pipelines(bucket))(task, context().ctx);
    const failure = async (task: LeasedTask) => {
      const error = await run(task).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TaskError);
      return error as TaskError;
    };
    const noBase = await failure(trainTask(bucket, PARAMETERS, 22, false));
    expect([noBase.code, noBase.retryable]).toEqual(["base-tokenizer-required", false]);
    const bad = await failure(trainTask(bucket, { ...PARAMETERS, epochs: -1 }));
    expect([bad.code, bad.retryable]).toEqual(["parameters-invalid", false]);
    expect(bad.message).toMatch(/epochs/);
    const small = await failure(trainTask(bucket, PARAMETERS, 6));
    expect([small.code, small.retryable]).toEqual(["dataset-too-small", false]);
  }, 60_000);
});
