/**
 * Trains the small VAE the repository ships (docs/default-vae.md) and writes it to
 * models/default-vae/: model.safetensors, manifest.json and heldout-crops.png (the fixed crops
 * the tests check the committed weights against). Run through `npm run train:default-vae`,
 * which fetches the photos first.
 *
 * Everything is seeded: the initialisation, the crops, their order. The learning rate depends on
 * the step alone until the last `--cooldown` steps, which ramp it down to 0, so a longer run passes
 * through exactly the models of a shorter one up to where that one cools down; a run resumed from
 * its checkpoint (written every `--checkpoint-every` steps, with Adam's moments and the crop
 * generator's state) goes on as if never stopped.
 */

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng, type RngState } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendChoice, isBackendChoice, selectBackend } from "../gpu-worker/src/backend.ts";
import { loadCheckpoint, saveCheckpoint } from "../gpu-worker/src/models/small-vae/checkpoint.ts";
import { DEFAULT_SMALL_VAE } from "../gpu-worker/src/models/small-vae/config.ts";
import { initSmallVae, type SmallVae } from "../gpu-worker/src/models/small-vae/model.ts";
import { type AdamState, createAdam, trainStep } from "../gpu-worker/src/models/small-vae/train.ts";
import { evaluate } from "./default-vae/evaluate.ts";
import { exportModel } from "./default-vae/export.ts";
import {
  CROP,
  gridCrops,
  groupByFile,
  loadScaled,
  photoFiles,
  randomCrops,
  TRAIN_SCALES,
} from "./default-vae/photos.ts";

const DEFAULT_STEPS = 400;
const DEFAULT_COOLDOWN = 150;
const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: String(DEFAULT_STEPS) },
    cooldown: { type: "string", default: String(DEFAULT_COOLDOWN) },
    batch: { type: "string", default: "16" },
    seed: { type: "string", default: "2507" },
    lr: { type: "string", default: "0.002" },
    backend: { type: "string", default: "wasm" },
    photos: { type: "string", default: ".revq/cache/photos" },
    work: { type: "string", default: ".revq/cache/default-vae" },
    out: { type: "string", default: "models/default-vae" },
    "checkpoint-every": { type: "string", default: "100" },
    "eval-every": { type: "string", default: "500" },
  },
});
const count = (name: keyof typeof args) => {
  const v = Number(args[name]);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
};
const steps = count("steps");
const cooldown = Number(args.cooldown);
if (!Number.isSafeInteger(cooldown) || cooldown < 0 || cooldown >= steps) {
  throw new Error("--cooldown must be an integer in [0, --steps)");
}
const batch = count("batch");
const seed = count("seed");
const baseLr = Number(args.lr);
const backend = String(args.backend);
if (!isBackendChoice(backend)) throw new Error(`--backend ${backend} is not a backend`);

/** Linear warm-up, halving every HALF_LIFE steps, and a linear ramp to 0 over the last `cooldown`. */
const WARMUP = 100;
const HALF_LIFE = 1000;
const learningRate = (step: number) =>
  baseLr *
  Math.min(1, step / WARMUP) *
  0.5 ** (step / HALF_LIFE) *
  Math.min(1, (steps - step + 1) / (cooldown + 1));
/** The last step whose learning rate does not depend on --steps and --cooldown. */
const plainUntil = steps - cooldown;

/** What a checkpoint must agree on to be resumed. */
const runKey = JSON.stringify({
  config: DEFAULT_SMALL_VAE,
  seed,
  batch,
  baseLr,
  WARMUP,
  HALF_LIFE,
});

const schedule = JSON.stringify({ steps, cooldown });

const selection = await selectBackend(backend as BackendChoice);
log(`backend: ${selection.reason}`);
const trainFiles = photoFiles(join(String(args.photos), "train"));
const heldoutFiles = photoFiles(join(String(args.photos), "heldout"));
const train = groupByFile(await loadScaled(trainFiles, TRAIN_SCALES));
const heldout = gridCrops(await loadScaled(heldoutFiles, [64, 128, 256]));
log(
  `${trainFiles.length} training photos (${train.flat().length} scaled copies), ${heldout.length} held-out crops`,
);

const work = String(args.work);
mkdirSync(work, { recursive: true });
const checkpointPath = join(work, "checkpoint.safetensors");
const { vae, adam, rng, trainSeconds, smoothedLoss } = await startOrResume();
const params = vae.bindings.reduce((n, b) => n + b.param.size, 0);
log(`${params} parameters; step ${adam.step} of ${steps}`);

let elapsed = trainSeconds;
let since = performance.now();
/** The training loss, smoothed over the last ~50 steps; NaN before the first. */
let running = smoothedLoss;
while (adam.step < steps) {
  const images = tf.tensor4d(randomCrops(train, batch, rng), [batch, CROP, CROP, 3]);
  const loss = await trainStep(vae, adam, images, learningRate(adam.step + 1));
  images.dispose();
  running = Number.isNaN(running) ? loss : 0.98 * running + 0.02 * loss;
  if (adam.step % count("checkpoint-every") === 0 || adam.step === steps) {
    elapsed += (performance.now() - since) / 1000;
    since = performance.now();
    await checkpoint();
    log(
      `step ${adam.step}: loss ${running.toFixed(4)}, lr ${learningRate(adam.step).toExponential(2)}, ${elapsed.toFixed(0)} s`,
    );
  }
  if (adam.step % count("eval-every") === 0) {
    const q = await evaluate(vae, heldout);
    log(`step ${adam.step}: held-out PSNR ${q.psnr} dB, SSIM ${q.ssim}`);
  }
}

const evaluation = await evaluate(vae, heldout);
log(
  `final held-out PSNR ${evaluation.psnr} dB, SSIM ${evaluation.ssim} ${JSON.stringify(evaluation.byScale)}`,
);
await exportModel({
  vae,
  out: String(args.out),
  photos: String(args.photos),
  heldout,
  evaluation,
  training: {
    seed,
    steps,
    batch,
    learningRate: {
      base: baseLr,
      warmupSteps: WARMUP,
      halfLifeSteps: HALF_LIFE,
      cooldownSteps: cooldown,
    },
    backend: selection.backend,
    trainSeconds: Math.round(elapsed),
    finalLoss: Number.isNaN(running) ? null : Number(running.toFixed(4)),
  },
  trainFiles,
  heldoutFiles,
  command: `npm run train:default-vae${
    steps === DEFAULT_STEPS && cooldown === DEFAULT_COOLDOWN
      ? ""
      : ` -- --steps ${steps} --cooldown ${cooldown}`
  }`,
});
log(`wrote ${args.out}`);

async function startOrResume(): Promise<{
  vae: SmallVae;
  adam: AdamState;
  rng: Rng;
  trainSeconds: number;
  smoothedLoss: number;
}> {
  if (existsSync(checkpointPath)) {
    const { vae, adam, metadata } = await loadCheckpoint(
      DEFAULT_SMALL_VAE,
      new Uint8Array(readFileSync(checkpointPath)),
    );
    // Never overwritten silently: it may be the only copy of hours of training.
    // Resumable if every step so far had the learning rate this run gives it.
    const sameSchedule = metadata.schedule === schedule;
    const before = Number(metadata.plainUntil ?? Number.POSITIVE_INFINITY);
    const consistent = sameSchedule || adam.step <= Math.min(before, plainUntil);
    if (metadata.run !== runKey || !consistent || adam.step > steps) {
      throw new Error(
        `${checkpointPath} (step ${adam.step}) is of another configuration or learning-rate schedule; pass another --work or remove it`,
      );
    }
    log(`resuming from ${checkpointPath} at step ${adam.step}`);
    const rng = Rng.fromState(JSON.parse(metadata.rng) as RngState);
    // NaN for checkpoints written before the loss was recorded: set again by the next step.
    const smoothedLoss = Number(metadata.loss);
    return { vae, adam, rng, trainSeconds: Number(metadata.trainSeconds), smoothedLoss };
  }
  const vae = await initSmallVae(DEFAULT_SMALL_VAE, seed);
  const fresh = { adam: createAdam(vae), rng: new Rng(seed), trainSeconds: 0, smoothedLoss: NaN };
  return { vae, ...fresh };
}

/** Written aside, then renamed: a run killed mid-write leaves the previous checkpoint whole. */
async function checkpoint(): Promise<void> {
  const bytes = await saveCheckpoint(vae, adam, {
    run: runKey,
    rng: JSON.stringify(rng.state()),
    trainSeconds: elapsed.toFixed(1),
    loss: String(running),
    schedule,
    plainUntil: String(plainUntil),
  });
  writeFileSync(`${checkpointPath}.tmp`, bytes);
  renameSync(`${checkpointPath}.tmp`, checkpointPath);
}

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}
