/**
 * The worker's encode pipeline around the device, without the edge: does it keep the device
 * busy? The real encode task (images fetched from a bucket in memory, decoded and resized by
 * sharp, batched, VAE-encoded, normalised, searched for their nearest codes, the token stream
 * written back) against the bare encoder (the same VAE on the same batches), one backend, one
 * process; the task's share of the bare encoder's images/s is how much of the device the
 * pipeline uses (issue 12: ≥ 80 %). The edge's part (HTTP, D1, R2) is bench:encode's; this one
 * runs where the edge cannot, on a GPU box with no package registry (gpu-check).
 *
 *   npm run bench:encode-pipeline -- [backend] [--side 256] [--batch 32] [--batches 8]
 *
 * The model is DC-AE f32c32 (sana-1.1 architecture) with random weights, written once to a
 * temporary models folder and named by the tokenizer as a VAE without weights (how published
 * checkpoints are used); tokens of 4 values, 16 384 codes per token (at 256×256 the paper's
 * 512 tokens),
 * statistics from the bare run's latents and a random codebook. Images: synthetic JPEGs of
 * 1.25 × the side (so every one is resized). Results: bench/results/encode-pipeline.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  batchStats,
  bucketKeys,
  canonicalJson,
  manifestHash,
  parseManifest,
  Rng,
  standardDeviation,
  type Tensor,
  writeSafetensors,
} from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, selectBackend } from "../gpu-worker/src/backend.ts";
import { loadDcae } from "../gpu-worker/src/models/dcae/model.ts";
import { DCAE_PRESETS, dcaePreset } from "../gpu-worker/src/models/dcae/presets.ts";
import { randomInitSource } from "../gpu-worker/src/models/sources.ts";
import type { VaeSpec } from "../gpu-worker/src/models/vae.ts";
import { loadLocalVae, WEIGHTS_FILE } from "../gpu-worker/src/pipeline/local-vae.ts";
import { fileRef, recording, syntheticImage } from "../tests/e2e/support/tiny-tokenizer.ts";
import { MemoryBucket } from "../tests/gpu-worker/worker-helpers/memory-bucket.ts";
import {
  context,
  leased,
  pipelines,
  putTokenizer,
  runTask,
  TENANT,
} from "../tests/gpu-worker/worker-helpers/train-world.ts";
import { writeResults } from "./lib/results.ts";

const PRESET = "dc-ae-f32c32-sana-1.1";
/** Values per token: 512 tokens at 256×256 (the paper's layout). */
const CODE_DIM = 4;
const CODES = 16_384;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    side: { type: "string", default: "256" },
    batch: { type: "string", default: "32" },
    batches: { type: "string", default: "8" },
  },
});
const backend = (positionals[0] ?? "webgpu") as BackendName;
const side = Number(values.side);
const batch = Number(values.batch);
const count = batch * Number(values.batches);

/** The preset's random weights in diffusers' layout, as a models folder holds a checkpoint. */
async function writeRandomCheckpoint(modelsDir: string, name: string): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  const model = await loadDcae(dcaePreset(PRESET), recording(randomInitSource(1), tensors));
  tf.dispose(model.bindings.map((b) => b.param));
  const dir = join(modelsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, WEIGHTS_FILE), writeSafetensors(tensors));
}

/** The VAE alone on `batches` random batches (after one warm-up); its latents for the stats. */
async function bareEncoder(spec: VaeSpec, modelsDir: string) {
  const vae = await loadLocalVae(spec, modelsDir);
  try {
    const images = Float32Array.from(
      { length: batch * side * side * 3 },
      () => Math.random() * 2 - 1,
    );
    await vae.encode(images, batch);
    const start = performance.now();
    let latents: Float32Array = new Float32Array();
    for (let i = 0; i < Number(values.batches); i++) latents = await vae.encode(images, batch);
    const seconds = (performance.now() - start) / 1000;
    return { imagesPerSecond: count / seconds, seconds, latents };
  } finally {
    vae.dispose();
  }
}

/** A tokenizer naming the VAE without weights: statistics of `latents`, a random codebook. */
async function tokenizerFiles(spec: VaeSpec, latents: Float32Array) {
  const dims = latents.length / batch;
  const stats = batchStats(latents, dims);
  const std = Float32Array.from(standardDeviation(stats), (s) => Math.max(s, 1e-6));
  const rng = new Rng(3);
  const tokens = dims / CODE_DIM;
  const codebook = Float32Array.from({ length: dims * CODES }, () => rng.nextNormal());
  const statsBytes = writeSafetensors({
    mean: { dtype: "F32", shape: [dims], data: Float32Array.from(stats.mean) },
    std: { dtype: "F32", shape: [dims], data: std },
  });
  const codebookBytes = writeSafetensors({
    codebook: { dtype: "F32", shape: [tokens, CODES, CODE_DIM], data: codebook },
  });
  const manifest = parseManifest({
    schema: "revq.tokenizer/v1",
    name: "bench-dcae-f32c32-random",
    description: "bench/encode-pipeline.ts: random DC-AE f32c32, random codebook.",
    vae: spec,
    quantizer: { tokens, groups: tokens, codeDim: CODE_DIM, codesPerGroup: CODES },
    rectifier: { architecture: "identity" },
    files: {
      stats: await fileRef("stats.safetensors", statsBytes, ["mean", "std"]),
      codebook: await fileRef("codebook.safetensors", codebookBytes, ["codebook"]),
    },
  });
  const files = new Map([
    ["stats.safetensors", statsBytes],
    ["codebook.safetensors", codebookBytes],
  ]);
  return {
    manifest,
    manifestBytes: new TextEncoder().encode(canonicalJson(manifest)),
    hash: await manifestHash(manifest),
    files,
  };
}

async function main(): Promise<void> {
  const started = await selectBackend(backend);
  const work = mkdtempSync(join(tmpdir(), "revq-encode-pipeline-"));
  try {
    const modelsDir = join(work, "models");
    const config = DCAE_PRESETS[PRESET].config;
    const spec: VaeSpec = {
      name: "dc-ae-f32c32-random",
      kind: "dcae",
      inputResolution: { height: side, width: side },
      latentShape: { channels: 32, height: side / 32, width: side / 32 },
      config,
    };
    await writeRandomCheckpoint(modelsDir, spec.name);
    const bare = await bareEncoder(spec, modelsDir);
    const built = await tokenizerFiles(spec, bare.latents);

    const bucket = new MemoryBucket();
    const tokenizer = putTokenizer(bucket, built);
    const jpegSide = Math.round(side * 1.25);
    const images = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const imageId = `img_${String(i).padStart(26, "0")}`;
        const key = bucketKeys.image(TENANT, imageId);
        bucket.objects.set(key, await syntheticImage(i, "jpeg", jpegSide, jpegSide));
        return {
          imageId,
          bucketKey: key,
          format: "jpeg" as const,
          width: jpegSide,
          height: jpegSide,
        };
      }),
    );
    const run = runTask(pipelines(bucket, { batchSize: batch, modelsDir }));
    const encode = (list: typeof images, n: number) =>
      run(
        leased({
          kind: "encode",
          tokenizer,
          images: list,
          output: { tokens: bucketKeys.jobTokens(TENANT, `job_${String(n).padStart(26, "0")}`) },
        }),
        context().ctx,
      );
    await encode(images.slice(0, batch), 0); // warm-up: loads the tokenizer, compiles the kernels
    const start = performance.now();
    await encode(images, 1);
    const seconds = (performance.now() - start) / 1000;
    const task = { images: count, seconds, imagesPerSecond: count / seconds };
    const figures = {
      backend,
      device: started.reason,
      accelerated: started.accelerated,
      model: `${PRESET} (random weights) at ${side}×${side}`,
      tokenizer: `${built.manifest.quantizer.tokens} tokens × ${CODES} codes of ${CODE_DIM} values`,
      images: `synthetic JPEG ${jpegSide}×${jpegSide}, resized to ${side}×${side}`,
      batch,
      bare: { images: count, seconds: bare.seconds, imagesPerSecond: bare.imagesPerSecond },
      task,
      shareOfBare: task.imagesPerSecond / bare.imagesPerSecond,
    };
    console.log(
      `${backend}: the encode task ${task.imagesPerSecond.toFixed(2)} images/s, ${(100 * figures.shareOfBare).toFixed(0)} % of the bare encoder's ${bare.imagesPerSecond.toFixed(2)} (batch ${batch}, ${side}×${side}, ${started.reason})`,
    );
    console.log(`written to ${writeResults(`encode-pipeline.${backend}`, figures)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
process.exit(0); // Dawn's threads would otherwise keep the process alive
