/**
 * The training run (DESIGN.md steps 6–7; the reference's epoch loop): codebook initialised from
 * random training latents, then per epoch: a shuffled pass in full batches (the last partial
 * batch dropped, as the reference's DataLoader does), the dead-code reset and a fresh count,
 * validation, and the learning rate decayed for the next epoch. Everything random comes from one
 * seeded generator whose state the checkpoint keeps, so a resumed run repeats a straight one.
 */

import {
  type Codebook,
  initCodebookFromLatents,
  quantLayout,
  Rng,
  resetDeadCodes,
  sampleCodebookSources,
  usagePerGroup,
} from "@revq/shared";
import { disposeRectifier, initRectifier } from "../models/rectifier.ts";
import type { Vae } from "../models/vae.ts";
import { disposeAdamW } from "./adamw.ts";
import type { TrainConfig } from "./config.ts";
import {
  gatherLatents,
  type LatentSet,
  type Normalizer,
  normalizeLatents,
  shuffledOrder,
} from "./dataset.ts";
import { letEventLoopTurn } from "./event-loop.ts";
import type { ImageSource } from "./extract.ts";
import { createQuantizer, disposeQuantizer, readCodebook, writeCodebook } from "./quantizer.ts";
import { rectifierObjective } from "./rectifier-objective.ts";
import { learningRateAt } from "./schedule.ts";
import {
  createTrainState,
  fillCounts,
  readCounts,
  type StepMetrics,
  type TrainState,
  trainStep,
  usageShape,
} from "./step.ts";
import { type ImageProbe, type Validation, validate } from "./validate.ts";

export type TrainData = {
  /** Raw latents; batches are normalised as they are drawn. */
  latents: LatentSet;
  /** Which of them to train on (the rest may be held out). */
  train: Uint32Array;
  heldOut: LatentSet;
  normalizer: Normalizer;
  /** The frozen VAE the latents came from; a run with an image loss trains through it. */
  vae?: Vae;
  /** The images the latents came from, by the same index: the image loss's targets. */
  images?: ImageSource;
  probe?: ImageProbe;
};

export type EpochRecord = {
  /** 0-based. */
  epoch: number;
  steps: number;
  /** Means over the epoch's steps. */
  lossQuantizer: number;
  lossRectifier: number;
  gradNormQuantizer: number;
  gradNormRectifier: number;
  learningRates: { quantizer: number; rectifier: number };
  /** Fraction of each group's codes that training used this epoch (before the reset). */
  usageMean: number;
  usageMin: number;
  /** Codes the dead-code reset moved after this epoch. */
  replacedCodes: number;
  /** Absent when nothing is held out. */
  validation?: Validation;
  seconds: number;
  latentsPerSecond: number;
  /** When the epoch ended (ISO 8601): the last one's is the tokenizer's creation time. */
  endedAt: string;
};

export type TrainRun = {
  config: TrainConfig;
  state: TrainState;
  rng: Rng;
  /** Epochs completed. */
  epoch: number;
  history: EpochRecord[];
};

export type StepProgress = StepMetrics & { epoch: number; step: number; steps: number };

export type TrainHooks = {
  onStep?: (progress: StepProgress) => void;
  /** After each epoch (checkpoint here); awaited before the next epoch starts. */
  onEpoch?: (record: EpochRecord, run: TrainRun) => Promise<void> | void;
  signal?: AbortSignal;
};

/**
 * A fresh run: codebook from random training latents, rectifier from the seed. Given `codebook`
 * (a trained one), the run starts from it instead; with the quantizer's learning rate and the
 * reset ratio at 0 it trains the rectifier alone on a codebook that stays as it is.
 */
export async function startRun(
  config: TrainConfig,
  data: TrainData,
  codebook?: Codebook,
): Promise<TrainRun> {
  const layout = quantLayout(config.latentShape, config.tokens, config.groups);
  const steps = Math.floor(data.train.length / config.batchSize);
  if (steps < 1) {
    throw new RangeError(
      `a batch of ${config.batchSize} needs at least that many training latents; there are ${data.train.length}`,
    );
  }
  if (codebook && codebook.codes !== config.codes) {
    throw new RangeError(`the codebook has ${codebook.codes} codes, the run ${config.codes}`);
  }
  const rng = new Rng(config.seed);
  const quantizer = createQuantizer(layout, codebook ?? sampledCodebook(config, data, rng));
  const rectifier = await initRectifier(config.rectifier, config.seed);
  const state = createTrainState({
    latentShape: config.latentShape,
    quantizer,
    rectifier,
    learningRates: config.learningRates,
    rectifierWeightDecay: config.rectifierWeightDecay,
    assignment: config.assignment,
  });
  return { config, state, rng, epoch: 0, history: [] };
}

/** K codes per group, each a random training latent's token (the reference's prepare_codebook). */
function sampledCodebook(config: TrainConfig, data: TrainData, rng: Rng): Codebook {
  const layout = quantLayout(config.latentShape, config.tokens, config.groups);
  const sources = sampleCodebookSources(rng, layout, config.codes, data.train.length);
  // Only the sampled latents are gathered and normalised: the bank is those, in first-use order.
  const slot = new Map<number, number>();
  for (const n of sources) if (!slot.has(n)) slot.set(n, slot.size);
  const picked = Array.from(slot.keys(), (n) => data.train[n]);
  const bank = normalizeLatents(gatherLatents(data.latents, picked), data.normalizer);
  return initCodebookFromLatents(
    bank,
    layout,
    sources.map((n) => slot.get(n) as number),
    config.codes,
  );
}

export async function runEpoch(
  run: TrainRun,
  data: TrainData,
  hooks: TrainHooks = {},
): Promise<EpochRecord> {
  const { config, state } = run;
  const epoch = run.epoch;
  const started = performance.now();
  const [quantGroup, rectGroup] = state.optimizer.groups;
  quantGroup.lr = learningRateAt(config.learningRates.quantizer, epoch, config.epochs);
  rectGroup.lr = learningRateAt(config.learningRates.rectifier, epoch, config.epochs);

  const order = shuffledOrder(run.rng, data.train.length);
  const steps = Math.floor(order.length / config.batchSize);
  const sums = { lossQuantizer: 0, lossRectifier: 0, gradNormQuantizer: 0, gradNormRectifier: 0 };
  const tally = (metrics: StepMetrics, step: number) => {
    for (const key of Object.keys(sums) as (keyof typeof sums)[]) sums[key] += metrics[key];
    hooks.onStep?.({ ...metrics, epoch, step, steps });
  };
  const objective = rectifierObjective(config, data.normalizer, data);
  // Each step's numbers are awaited after the next step is queued: the device always has work.
  let previous: Promise<StepMetrics> | undefined;
  for (let step = 0; step < steps; step++) {
    hooks.signal?.throwIfAborted();
    const drawn = order.subarray(step * config.batchSize, (step + 1) * config.batchSize);
    const indices = Array.from(drawn, (i) => data.train[i]);
    const batch = normalizeLatents(gatherLatents(data.latents, indices), data.normalizer);
    const batchLoss = await objective.forBatch(indices);
    const { metrics } = await trainStep(state, batch, batchLoss.loss);
    batchLoss.release();
    if (previous) tally(await previous, step);
    previous = metrics;
    await letEventLoopTurn();
  }
  if (previous) tally(await previous, steps);
  objective.dispose();

  const counts = await readCounts(state);
  const usage = usagePerGroup(epochHits(counts, epoch), usageShape(state.quantizer));
  const replacedCodes = await resetDeadCodesOnce(run, counts);
  const validation =
    data.heldOut.count > 0
      ? await validate(state, data.normalizer, data.heldOut, config.batchSize, data.probe)
      : undefined;
  const seconds = (performance.now() - started) / 1000;
  const record: EpochRecord = {
    epoch,
    steps,
    lossQuantizer: sums.lossQuantizer / steps,
    lossRectifier: sums.lossRectifier / steps,
    gradNormQuantizer: sums.gradNormQuantizer / steps,
    gradNormRectifier: sums.gradNormRectifier / steps,
    learningRates: { quantizer: quantGroup.lr, rectifier: rectGroup.lr },
    usageMean: usage.reduce((a, b) => a + b, 0) / usage.length,
    usageMin: Math.min(...usage),
    replacedCodes,
    ...(validation ? { validation } : {}),
    seconds,
    latentsPerSecond: (steps * config.batchSize) / seconds,
    endedAt: new Date().toISOString(),
  };
  run.epoch += 1;
  run.history.push(record);
  return record;
}

/** Runs the remaining epochs. */
export async function train(run: TrainRun, data: TrainData, hooks: TrainHooks = {}): Promise<void> {
  while (run.epoch < run.config.epochs) {
    const record = await runEpoch(run, data, hooks);
    await hooks.onEpoch?.(record, run);
  }
}

/**
 * The epoch's hits: the count buffer less the ones it started from in epoch 0 (fixtures README
 * §3), the buffer itself afterwards.
 */
function epochHits(counts: Float64Array, epoch: number): Float64Array {
  return epoch === 0 ? counts.map((c) => c - 1) : counts;
}

/** The reference's quantizer.reset(): dead codes moved onto busy ones, then counts zeroed. */
async function resetDeadCodesOnce(run: TrainRun, counts: Float64Array): Promise<number> {
  const { state, config } = run;
  const codebook = await readCodebook(state.quantizer);
  const replaced = resetDeadCodes(codebook, counts, { ...config.reset, rng: run.rng });
  const total = replaced.reduce((a, b) => a + b, 0);
  if (total > 0) writeCodebook(state.quantizer, codebook);
  fillCounts(state, 0);
  return total;
}

export function disposeRun(run: TrainRun): void {
  disposeQuantizer(run.state.quantizer);
  disposeRectifier(run.state.rectifier);
  disposeAdamW(run.state.optimizer);
  run.state.counts.dispose();
}
