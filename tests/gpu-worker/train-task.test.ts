/**
 * The train task on a bucket in memory, with the tiny test tokenizer's VAE: a dataset in, a
 * tokenizer's files in the bucket and its manifest out; a task stopped after an epoch resumes
 * from its checkpoint in a new worker and ends where a straight run ends; the manifest carries
 * the held-out evaluation, and a run that misses the job's thresholds fails with its figures.
 */
import {
  bucketKeys,
  canonicalJson,
  type DatasetRef,
  type LeasedTask,
  latentShardName,
  manifestHash,
  missedRequirements,
  type Progress,
  parseManifest,
  readTokenStream,
} from "@revq/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { TaskError } from "../../gpu-worker/src/task-error.ts";
import {
  type BuiltTokenizer,
  buildTinyTokenizer,
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

// 22 images: 2 held out, 20 to train in batches of 8 (2 steps an epoch); 3 epochs.
const PARAMETERS = { ...TINY_TRAINING, name: "trained-in-a-test", epochs: 3 };

beforeAll(async () => {
  await selectBackend("wasm");
  base = await buildTinyTokenizer();
  images = await Promise.all(Array.from({ length: 22 }, (_, i) => syntheticImage(900 + i)));
}, 60_000);

afterAll(removeWorkFolders);

const JOB = "job_00000000000000000000000001";

async function trainTask(
  bucket: MemoryBucket,
  parameters: Record<string, unknown>,
  count = images.length,
): Promise<LeasedTask & { payload: { dataset: DatasetRef } }> {
  const dataset = await putDataset(bucket, images.slice(0, count), base, SHARD_SIZE);
  const payload = {
    kind: "train" as const,
    base: putTokenizer(bucket, base),
    dataset,
    parameters,
    output: { checkpoints: bucketKeys.jobCheckpoints(TENANT, JOB) },
  };
  return { ...leased(payload, JOB), payload };
}

const codebookKey = (hash: string) => bucketKeys.tokenizerFile(hash, "codebook.safetensors");

describe("the train task", () => {
  it("trains on a dataset and leaves a tokenizer the worker can encode with", async () => {
    const bucket = new MemoryBucket();
    const p = pipelines(bucket);
    const { ctx, progress, stages, metrics } = context();
    const task = await trainTask(bucket, PARAMETERS);
    const { dataset } = task.payload;
    const outcome = await runTask(p)(task, ctx);
    if (outcome.result.kind !== "train") throw new Error("not a train result");
    const manifest = parseManifest(outcome.result.manifest);
    const hash = await manifestHash(manifest);
    expect(manifest.name).toBe("trained-in-a-test");
    expect(manifest.vae.weights).toEqual({ ...base.manifest.vae.weights, path: "vae.safetensors" });
    expect(manifest.training).toMatchObject({
      epochs: 3,
      batchSize: 8,
      seed: 2,
      dataset: { name: `listing ${dataset.listingHash}`, images: 22 },
    });
    // Its evaluation on the 2 held-out latents and their images: the last epoch's validation.
    const last = metrics.at(-1);
    expect(manifest.evaluation).toEqual({
      heldOut: { latents: 2, images: 2 },
      latentMse: { quantized: last?.valLatentMse, rectified: last?.valRectifiedMse },
      images: {
        tokens: { psnr: last?.valPsnr, ssim: last?.valSsim },
        vae: { psnr: last?.vaePsnr, ssim: last?.vaeSsim },
        tokensVsVae: { psnr: expect.any(Number), ssim: expect.any(Number) },
      },
      usage: { min: last?.usageMin, mean: last?.usageMean },
      bitsPerImage: 128 * 4,
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
    // Completing sums the run up; the last epoch's metrics were sent once, after that epoch.
    expect(outcome.metrics).toMatchObject({ epochs: 3 });
    expect(outcome.metrics?.trainSeconds).toBeGreaterThan(0);
    expect(outcome.metrics?.epoch).toBeUndefined();
    // The latents first (all extracted here: no other task made any), then one metric set per
    // epoch for the job's events, so a client can follow the curve.
    expect(metrics[0]).toMatchObject({
      latentShards: 3,
      latentShardsReused: 0,
      latentShardsExtracted: 3,
    });
    expect(metrics.slice(1).map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(metrics.slice(1).every((m) => m.lossQuantizer > 0 && m.valRectifiedMse > 0)).toBe(true);
    expect(stages).toContain("extracting latents");
    expect(stages).toContain("latents: 0 shards reused, 3 extracted");
    // Each epoch's 2 steps, then its validation, and how long the rest should take.
    const epoch3 = progress.filter((p) => p.stage?.startsWith("epoch 3/3"));
    expect(epoch3.map((p) => [p.done, p.total, p.stage])).toEqual([
      [1, 2, "epoch 3/3"],
      [2, 2, "epoch 3/3 · validating"],
    ]);
    expect(epoch3.every((p) => (p.etaSeconds ?? -1) >= 0)).toBe(true);
    expect(progress.find((p) => p.stage === "epoch 1/3")?.etaSeconds).toBeGreaterThan(0);
    expect(stages.at(-1)).toBe("exporting the tokenizer");
    const prefix = bucketKeys.jobCheckpoints(TENANT, JOB);
    expect(bucket.objects.has(`${prefix}state/checkpoint.json`)).toBe(true);
    // The latents are the dataset's, under its shared prefix, not the job's; written from the
    // last shard back (extract tasks start at the first).
    expect([...bucket.objects.keys()].filter((k) => k.startsWith(dataset.latents))).toEqual(
      [2, 1, 0].map((i) => dataset.latents + latentShardName(i)),
    );
    expect([...bucket.objects.keys()].filter((k) => k.startsWith(prefix))).toEqual([
      `${prefix}state/state-1.safetensors`,
      `${prefix}state/checkpoint.json`,
      `${prefix}state/state-0.safetensors`,
    ]);

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
    await runTask(p)(
      {
        taskId: "tsk_00000000000000000000000002",
        jobId: encodeJob,
        kind: "encode",
        attempt: 1,
        maxAttempts: 5,
        leaseId: "lse_2",
        leaseExpiresAt: new Date().toISOString(),
        objects: [],
        payload: {
          kind: "encode",
          tokenizer: ref,
          images: [
            {
              imageId: "img_00000000000000000000000000",
              bucketKey: bucketKeys.tenantFiles(TENANT, "set/0000.png"),
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
    const done = await runTask(pipelines(straight))(
      await trainTask(straight, PARAMETERS),
      context().ctx,
    );
    const straightHash = await manifestHash(
      parseManifest((done.result as { manifest: unknown }).manifest),
    );

    const bucket = new MemoryBucket();
    const task = await trainTask(bucket, PARAMETERS);
    const controller = new AbortController();
    const first = context(controller);
    const stopAfterEpoch1 = first.ctx.metrics;
    first.ctx.metrics = (m) => {
      stopAfterEpoch1(m);
      if (m.epoch === 1) controller.abort(new Error("lease lost"));
    };
    await expect(runTask(pipelines(bucket))(task, first.ctx)).rejects.toThrow();
    const index = JSON.parse(
      new TextDecoder().decode(
        bucket.objects.get(`${bucketKeys.jobCheckpoints(TENANT, JOB)}state/checkpoint.json`),
      ),
    );
    expect(index.epoch).toBe(1);
    // Made on the dataset's latents under the base's VAE: resumed on nothing else.
    expect(index.dataset).toBe(
      `${task.payload.dataset.listingHash}/${task.payload.dataset.latents.split("/")[4]}`,
    );

    const second = context();
    const outcome = await runTask(pipelines(bucket))(task, second.ctx);
    expect(
      second.logs.some((l) => l.includes("resuming training") && l.includes('"afterEpoch":1')),
    ).toBe(true);
    expect(second.metrics[0]).toMatchObject({ latentShardsReused: 3, latentShardsExtracted: 0 });
    expect(second.stages.filter((s) => s.startsWith("epoch "))[0]).toBe("epoch 2/3");
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

  it("lets the worker's timers run within an epoch, so that each epoch's figures leave as it ends", async () => {
    // 42 images: 38 to train in batches of 4, 9 steps an epoch, long enough for turns of the
    // event loop between them.
    const many = await Promise.all(Array.from({ length: 42 }, (_, i) => syntheticImage(950 + i)));
    const bucket = new MemoryBucket();
    const dataset = await putDataset(bucket, many, base, SHARD_SIZE, "many");
    const payload = {
      kind: "train" as const,
      base: putTokenizer(bucket, base),
      dataset,
      parameters: { ...TINY_TRAINING, batchSize: 4, epochs: 2 },
      output: { checkpoints: bucketKeys.jobCheckpoints(TENANT, JOB) },
    };
    const { ctx } = context();
    // The worker's heartbeat timer, in small: the turns of the event loop at each step.
    let turns = 0;
    const timer = setInterval(() => turns++, 1);
    const turnsAtSteps: number[] = [];
    let latest: Progress | undefined;
    ctx.progress = (p) => {
      latest = p;
      if (p.stage === "epoch 1/2") turnsAtSteps.push(turns);
    };
    // As the worker's heartbeat sends a metric set: on a later turn of the event loop.
    const sent: (Progress | undefined)[] = [];
    ctx.metrics = (m) => {
      if ("epoch" in m) setTimeout(() => sent.push(latest), 0);
    };
    await runTask(pipelines(bucket))({ ...leased(payload, JOB), payload }, ctx);
    clearInterval(timer);
    expect(turnsAtSteps).toHaveLength(8);
    expect(turnsAtSteps.at(-1)).toBeGreaterThan(turnsAtSteps[0]);
    // Epoch 1's figures left before epoch 2 had ended, not with its own.
    const left = sent[0];
    expect(left?.stage === "epoch 1/2 · validating" || left?.stage === "epoch 2/2").toBe(true);
    expect(left?.stage === "epoch 2/2" && left.done === 9).toBe(false);
  }, 60_000);

  it("fails for good, with the figures, when the tokenizer misses the job's thresholds", async () => {
    const bucket = new MemoryBucket();
    // Every code of every group used: not after one tiny epoch. (Any PSNR gap is let through.)
    const require = { maxPsnrGapDb: 100, minUsage: 1, rectifierMustHelp: true };
    const task = await trainTask(bucket, { ...PARAMETERS, epochs: 1, require });
    const error = await runTask(pipelines(bucket))(task, context().ctx).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TaskError);
    const { code, retryable, message, evaluation } = error as TaskError;
    expect([code, retryable]).toEqual(["evaluation-below-threshold", false]);
    expect(evaluation?.heldOut).toEqual({ latents: 2, images: 2 });
    expect(message).toMatch(/: least group's usage 0\.\d{3}, below the 1 required[;.]/);
    expect(message).not.toMatch(/PSNR/);
    // Each missed figure is named, from the evaluation that came with the failure.
    const missed = missedRequirements(evaluation, require);
    for (const figure of missed) expect(message).toContain(figure);
    // Nothing of it was written: no tokenizer to register.
    const codebooks = [...bucket.objects.keys()].filter((k) => k.endsWith("codebook.safetensors"));
    expect(codebooks).toEqual([codebookKey(base.hash)]);
  }, 60_000);

  it("fails with a reason that says what to change", async () => {
    const bucket = new MemoryBucket();
    const run = (task: LeasedTask) => runTask(pipelines(bucket))(task, context().ctx);
    const failure = async (task: LeasedTask) => {
      const error = await run(task).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TaskError);
      return error as TaskError;
    };
    const bad = await failure(await trainTask(bucket, { ...PARAMETERS, epochs: -1 }));
    expect([bad.code, bad.retryable]).toEqual(["parameters-invalid", false]);
    expect(bad.message).toMatch(/epochs/);
    const small = await failure(await trainTask(bucket, PARAMETERS, 6));
    expect([small.code, small.retryable]).toEqual(["dataset-too-small", false]);
    expect(small.message).toMatch(/^6 images \(0 held out\) do not make one batch of 8: /);
    // Refused before any extraction.
    expect([...bucket.objects.keys()].some((k) => k.includes("/latents/"))).toBe(false);
  }, 60_000);
});
