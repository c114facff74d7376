/**
 * Training throughput (latents/s) per tfjs backend: whole ReVQ training steps (code assignment,
 * gather, rectifier forward and backward, per-module clipping, AdamW on both groups, usage
 * counts) on random normalised latents, for
 *
 * - `tiny`: fixtures C's shapes (4×4×4 latents, 16 tokens × 32 codes, the tiny rectifier);
 * - `small`: the default configuration for the repository's small VAE (8×16×16 latents, 512
 *   tokens of 4 sharing one codebook of 4096 codes, the narrow two-block rectifier;
 *   bench/results/train.webgpu-h100.json was measured with its earlier 512 groups × 1024 codes);
 * - `512x16384`, `256x65536`, `256x262144`: the paper's three shapes on DC-AE f32c32 latents
 *   (32×8×8; tokens × codes per group, one group per token, each with its rectifier preset),
 *
 * and, for the paper's 512-token shape, the two code assignments alone (the host k-d tree rebuilt
 * for the step's codebook, and the device's matrix form). The paper's run (100 ImageNet epochs,
 * 1.28M images: 128M latents; 22 h on one RTX 4090 at batch 256) is projected from each figure.
 * Beside each timing: the tfjs kernels one step runs (tf.profile) and, on webgpu, what one
 * steady-state step asks of the GPU (dispatches, submits, new buffers, buffer maps; lib/gpu-work.ts):
 * counts that are the same on a software adapter as on a GPU.
 *
 *   npm run bench:train                   # every backend that starts here
 *   npm run bench:train -- wasm           # only these
 *   npm run bench:train -- --quick        # fewer steps, for a smoke run
 *
 * Each case runs in a process of its own (wasm's heap only grows). Batches are sized to the
 * device: on a GPU the paper's (256; 128 for 256 × 262144), a few latents on the CPU backends,
 * whose figures therefore say little about a GPU. The cpu backend gets only `tiny`. On webgpu the
 * paper's step also runs at batch 1 and 16, whose counts must agree; a software adapter
 * (llvmpipe) gets only those of the paper's shapes, for the counts (its timings say little).
 * Results: bench/results/train.json.
 */
import { type Assignment, createCodebook, quantLayout } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, selectBackend } from "../gpu-worker/src/backend.ts";
import {
  initRectifier,
  RECTIFIER_PRESETS,
  type RectifierConfig,
} from "../gpu-worker/src/models/rectifier.ts";
import { assignCodes } from "../gpu-worker/src/train/assign.ts";
import { TRAIN_PRESETS, type TrainConfig } from "../gpu-worker/src/train/config.ts";
import { latentSet, latentStatistics } from "../gpu-worker/src/train/dataset.ts";
import { createQuantizer } from "../gpu-worker/src/train/quantizer.ts";
import { disposeRun, runEpoch, startRun } from "../gpu-worker/src/train/run.ts";
import { createTrainState, trainStep } from "../gpu-worker/src/train/step.ts";
import { countGpuWork, type GpuWork } from "./lib/gpu-work.ts";
import { benchPerBackend } from "./lib/per-backend.ts";
import { writeResults } from "./lib/results.ts";

/** The paper's run: 100 epochs over ImageNet's 1.28M training images. */
const PAPER_LATENTS = 100 * 1_281_167;
const PAPER_HOURS_4090 = 22;

type Shape = {
  latent: { channels: number; height: number; width: number };
  tokens: number;
  /** Absent: one group per token (the paper's). */
  groups?: number;
  codes: number;
  rectifier: RectifierConfig;
};

const SHAPES = {
  tiny: {
    latent: { channels: 4, height: 4, width: 4 },
    tokens: 16,
    codes: 32,
    rectifier: RECTIFIER_PRESETS.tiny,
  },
  small: {
    latent: { channels: 8, height: 16, width: 16 },
    tokens: TRAIN_PRESETS.small.tokens,
    groups: TRAIN_PRESETS.small.groups,
    codes: TRAIN_PRESETS.small.codes,
    rectifier: TRAIN_PRESETS.small.rectifier,
  },
  /** `small` with a residual rectifier (rectifier.residual): its counts beside the plain one's. */
  "small-residual": {
    latent: { channels: 8, height: 16, width: 16 },
    tokens: TRAIN_PRESETS.small.tokens,
    groups: TRAIN_PRESETS.small.groups,
    codes: TRAIN_PRESETS.small.codes,
    rectifier: { ...TRAIN_PRESETS.small.rectifier, residual: true },
  },
  "512x16384": {
    latent: { channels: 32, height: 8, width: 8 },
    tokens: 512,
    codes: 16384,
    rectifier: RECTIFIER_PRESETS["512x16384"],
  },
  "256x65536": {
    latent: { channels: 32, height: 8, width: 8 },
    tokens: 256,
    codes: 65536,
    rectifier: RECTIFIER_PRESETS["256x65536"],
  },
  "256x262144": {
    latent: { channels: 32, height: 8, width: 8 },
    tokens: 256,
    codes: 262144,
    rectifier: RECTIFIER_PRESETS["256x262144"],
  },
} satisfies Record<string, Shape>;
type ShapeName = keyof typeof SHAPES;

type Case = {
  shape: ShapeName;
  batch: number;
  assignment: Assignment;
  what: "step" | "assign" | "epoch";
};

type Row = {
  shape: ShapeName;
  what: string;
  assignment: Assignment;
  batch: number;
  msPerStep: number;
  steps: number;
  latentsPerSecond: number;
  paperRunHours: number;
  /** tfjs kernels one step runs (tf.profile); not for the epoch loop. */
  kernels?: number;
  /** The epoch loop's whole epoch, its end included. */
  epochSeconds?: number;
  /** What one steady-state step asks of the GPU (webgpu only). */
  gpuWork?: GpuWork;
};

function randomLatents(count: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const u = (state + 1) / 2 ** 32;
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const v = state / 2 ** 32;
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** The child's side: one case on one backend. */
async function runCase(backend: BackendName, c: Case, minMs: number): Promise<Row> {
  await selectBackend(backend);
  if (c.what === "epoch") return epochLoop(c);
  const s: Shape = SHAPES[c.shape];
  const layout = quantLayout(s.latent, s.tokens, s.groups);
  const dims = s.tokens * layout.codeDim;
  const codebook = createCodebook(
    layout.groups,
    s.codes,
    layout.codeDim,
    randomLatents(layout.groups * s.codes * layout.codeDim, 1),
  );
  const quantizer = createQuantizer(layout, codebook);
  const batches = [randomLatents(c.batch * dims, 2), randomLatents(c.batch * dims, 3)];
  // Queues step i; `done` settles when its results are back on the host.
  let queue: (i: number) => Promise<{ done: Promise<unknown> }>;
  if (c.what === "assign") {
    const tokens = batches.map((b) => tf.tensor2d(b, [c.batch * s.tokens, layout.codeDim]));
    queue = async (i) => ({
      done: assignCodes(c.assignment, quantizer, tokens[i % 2], batches[i % 2]),
    });
  } else {
    const state = createTrainState({
      latentShape: s.latent,
      quantizer,
      rectifier: await initRectifier(s.rectifier, 1),
      learningRates: { quantizer: 0.01, rectifier: 0.0005 },
      rectifierWeightDecay: 1e-4,
      assignment: c.assignment,
    });
    queue = async (i) => ({ done: (await trainStep(state, batches[i % 2])).metrics });
  }
  // Steps as the training loop runs them (run.ts): each one's results awaited once the next is
  // queued, the last one's at the end.
  let steps = 0;
  const runSteps = async (more: () => boolean) => {
    let previous = (await queue(steps++)).done;
    while (more()) {
      const next = (await queue(steps++)).done;
      await previous;
      previous = next;
    }
    await previous;
  };
  // Warm-up: kernels compiled, the buffer pool filled (a step's buffers come back to it).
  await runSteps(() => steps < 2);
  const first = steps;
  const start = performance.now();
  await runSteps(() => performance.now() - start < minMs || steps - first < 2);
  const timed = steps - first;
  const msPerStep = (performance.now() - start) / timed;
  const latentsPerSecond = (1000 * c.batch) / msPerStep;
  const once = async () => runSteps(() => false);
  const gpuWork = backend === "webgpu" ? (await countGpuWork(once)).work : undefined;
  const profile = await tf.profile(once);
  return {
    shape: c.shape,
    what: c.what === "step" ? "training step" : "assignment alone",
    assignment: c.assignment,
    batch: c.batch,
    msPerStep,
    steps: timed,
    latentsPerSecond,
    paperRunHours: PAPER_LATENTS / latentsPerSecond / 3600,
    kernels: profile.kernels.length,
    ...(gpuWork ? { gpuWork } : {}),
  };
}

/** Steps of the loop bench's epoch. */
const EPOCH_STEPS = 16;

/**
 * The training loop itself (run.ts's runEpoch) over latents in shards, as a train task holds
 * them: batches drawn in shuffled order, gathered and normalised on the host, queued while the
 * previous step runs. The second of two epochs is measured (the first warms up, as the bare
 * step's first steps do); its rate is taken between the first and the last step's numbers (the
 * epoch's end — usage read, dead-code reset — is in epochSeconds), to compare with the bare
 * step's row.
 */
async function epochLoop(c: Case): Promise<Row> {
  const s: Shape = SHAPES[c.shape];
  const dims = s.latent.channels * s.latent.height * s.latent.width;
  const count = EPOCH_STEPS * c.batch;
  const shardSize = 4 * c.batch; // several shards, as extraction writes them
  const shards: Float32Array[] = [];
  for (let start = 0; start < count; start += shardSize) {
    shards.push(randomLatents(Math.min(shardSize, count - start) * dims, 7 + start));
  }
  const latents = latentSet(shards, dims);
  const config: TrainConfig = {
    latentShape: s.latent,
    tokens: s.tokens,
    groups: s.groups ?? s.tokens,
    codes: s.codes,
    rectifier: s.rectifier,
    epochs: 2,
    batchSize: c.batch,
    learningRates: { quantizer: 0.01, rectifier: 0.0005 },
    rectifierWeightDecay: 1e-4,
    reset: { ratio: 0.2, noise: 0.1 },
    seed: 1,
    assignment: c.assignment,
  };
  const data = {
    latents,
    train: Uint32Array.from({ length: count }, (_, i) => i),
    heldOut: latentSet([], dims),
    normalizer: latentStatistics(latents),
  };
  const run = await startRun(config, data);
  await runEpoch(run, data); // warm-up, as for the bare step: kernels compiled, memory grown
  const stamps: number[] = [];
  const record = await runEpoch(run, data, { onStep: () => stamps.push(performance.now()) });
  disposeRun(run);
  const msPerStep = (stamps[stamps.length - 1] - stamps[0]) / (stamps.length - 1);
  const latentsPerSecond = (1000 * c.batch) / msPerStep;
  return {
    shape: c.shape,
    what: "epoch loop",
    assignment: c.assignment,
    batch: c.batch,
    msPerStep,
    steps: record.steps,
    latentsPerSecond,
    paperRunHours: PAPER_LATENTS / latentsPerSecond / 3600,
    epochSeconds: record.seconds,
  };
}

function casesFor(backend: BackendName, accelerated: boolean): Case[] {
  const own: Assignment = accelerated ? "device" : "exact";
  const step = (shape: ShapeName, batch: number, assignment = own): Case => ({
    shape,
    batch,
    assignment,
    what: "step",
  });
  // The epoch loop beside the bare step of the same shape and batch.
  const withLoop = (c: Case): Case[] => [c, { ...c, what: "epoch" }];
  if (backend === "cpu") return withLoop(step("tiny", 32));
  const tiny = withLoop(step("tiny", 32));
  const small = withLoop(step("small", accelerated ? 256 : 16));
  const assignments = (batch: number) =>
    (["exact", "device"] as const).map(
      (assignment): Case => ({ shape: "512x16384", batch, assignment, what: "assign" }),
    );
  if (backend !== "webgpu") {
    return [...tiny, ...small, step("512x16384", 4, "device"), ...assignments(4)];
  }
  // On webgpu the paper's step at batch 1 and 16 shows that its GPU work does not grow with the
  // batch; a software adapter gets only those (it is there for the counts, not the timings).
  const counted = [step("512x16384", 1, "device"), step("512x16384", 16, "device")];
  if (!accelerated) return [...tiny, ...small, ...counted];
  return [
    ...tiny,
    ...small,
    ...counted,
    ...withLoop(step("512x16384", 256, "device")),
    step("256x65536", 256, "device"),
    step("256x262144", 128, "device"),
    ...assignments(16),
  ];
}

/** Each epoch loop's latents/s as a fraction of its bare step's (target: ≥ 0.9). */
function loopRatios(backends: Record<string, unknown>) {
  return Object.entries(backends).flatMap(([backend, b]) => {
    const rows = ((b as { rows?: Row[] }).rows ?? []).filter((r) => "shape" in r);
    return rows
      .filter((r) => r.what === "epoch loop")
      .flatMap((loop) => {
        const bare = rows.find(
          (r) => r.what === "training step" && r.shape === loop.shape && r.batch === loop.batch,
        );
        if (!bare) return [];
        const ratio = loop.latentsPerSecond / bare.latentsPerSecond;
        return [{ backend, shape: loop.shape, batch: loop.batch, ratio }];
      });
  });
}

function describeWork(w: GpuWork): string {
  return `${w.dispatches} dispatches, ${w.submits} submits, ${w.newBuffers} new buffers, ${w.bufferMaps} maps`;
}

const figures = await benchPerBackend({
  script: import.meta.url,
  args: process.argv.slice(2),
  minMs: (quick) => (quick ? 1000 : 10_000),
  cases: (backend, accelerated) => casesFor(backend, accelerated),
  runCase: async (backend, c: Case, minMs) => [await runCase(backend, c, minMs)],
  describe: (backend, r: Row) =>
    `${backend.padEnd(8)} ${r.shape.padEnd(10)} ${r.what.padEnd(17)} ${r.assignment.padEnd(7)} batch ${String(r.batch).padStart(3)}: ` +
    `${r.msPerStep.toFixed(0).padStart(7)} ms/step, ${r.latentsPerSecond.toFixed(1).padStart(8)} latents/s, paper's run ${r.paperRunHours.toFixed(0)} h; ` +
    `${r.kernels ?? "-"} kernels${r.gpuWork ? `, ${describeWork(r.gpuWork)}` : ""}`,
});
if (figures) {
  const paper = {
    latents: PAPER_LATENTS,
    hoursOnOne4090: PAPER_HOURS_4090,
    latentsPerSecond: PAPER_LATENTS / PAPER_HOURS_4090 / 3600,
  };
  const loops = loopRatios(figures.backends);
  for (const l of loops) {
    console.log(
      `${l.backend} ${l.shape} batch ${l.batch}: the epoch loop runs at ${(100 * l.ratio).toFixed(0)} % of the bare step`,
    );
  }
  console.log(`written to ${writeResults("train", { ...figures, loopRatios: loops, paper })}`);
}
process.exit(0); // Dawn's threads would otherwise keep the process alive
