/**
 * One ReVQ training step (DESIGN.md step 6; the inner loop of the reference's scripts/train.py):
 *
 *   x (B, T, D) normalised tokens → ids (nearest codes) → q = codebook[t mod G, ids]
 *   loss = mse(x, q) + mse(x, rectifier(stopgrad(q)))
 *
 * or with the rectifier's term a run's other objective (rectifier-objective.ts): the latent's
 * squared error weighted per dimension, or the squared error of the frozen VAE decoder's images.
 *
 * The quantizer learns from its own MSE through the gather, the rectifier from its own (no
 * straight-through estimator, no commitment loss); each module's gradient is clipped to norm 1,
 * then AdamW updates both parameter groups. Usage counts gain one hit per token.
 *
 * Nothing in a step waits on the device when the assignment is `device`: the code rows, the
 * gather, the usage counts and the update stay there, and the step's four numbers come back in
 * one read that the caller awaits when it likes (run.ts: a step later, so the queue never
 * drains).
 */

import type { Assignment, Codebook, LatentShape } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { type Rectifier, rectify } from "../models/rectifier.ts";
import { type AdamW, adamwStep, createAdamW } from "./adamw.ts";
import { assigner } from "./assign.ts";
import { gatherCodes, type TrainableQuantizer } from "./quantizer.ts";
import { meanSquaredError, type RectifierLossFn } from "./rectifier-objective.ts";

/** clip_grad_norm_'s max_norm, per module. */
export const MAX_GRAD_NORM = 1;

export type TrainState = {
  latentShape: LatentShape;
  quantizer: TrainableQuantizer;
  rectifier: Rectifier;
  /** Group 0: the codebook; group 1: the rectifier's parameters in binding order. */
  optimizer: AdamW;
  assignment: Assignment;
  /**
   * (G·K,) usage since the last reset, on the device (float32: exact up to 2^24 hits a code).
   * Starts at ones, as the reference's count buffer after prepare_codebook, so the first
   * epoch's reset replaces nothing (fixtures README §3).
   */
  counts: tf.Variable<tf.Rank.R1>;
};

export type TrainStateSpec = {
  latentShape: LatentShape;
  quantizer: TrainableQuantizer;
  rectifier: Rectifier;
  learningRates: { quantizer: number; rectifier: number };
  rectifierWeightDecay: number;
  assignment: Assignment;
};

export function createTrainState(spec: TrainStateSpec): TrainState {
  const { quantizer, rectifier } = spec;
  const optimizer = createAdamW([
    { params: [quantizer.embeddings], lr: spec.learningRates.quantizer, weightDecay: 0 },
    {
      params: rectifier.bindings.map((b) => b.param as tf.Variable),
      lr: spec.learningRates.rectifier,
      weightDecay: spec.rectifierWeightDecay,
    },
  ]);
  const counts = tf.tidy(() =>
    tf.variable(tf.ones([quantizer.layout.groups * quantizer.codes]) as tf.Tensor1D, false),
  );
  return {
    latentShape: spec.latentShape,
    quantizer,
    rectifier,
    optimizer,
    assignment: spec.assignment,
    counts,
  };
}

/** Both losses and the gradients before clipping; the caller disposes the tensors. */
export type Gradients = {
  /** (B·T,) int32 codebook row of every token: (t mod G)·K + its code id. */
  rows: tf.Tensor1D;
  lossQuantizer: tf.Scalar;
  lossRectifier: tf.Scalar;
  /** (G, K, D) */
  quantizer: tf.Tensor;
  /** One per rectifier binding, in binding order. */
  rectifier: tf.Tensor[];
};

/**
 * batch: (B, C·H·W) normalised latents, row-major: each row is the sample's T·D token values.
 * objective: the rectifier's loss; absent: ReVQ's mse.
 */
export async function lossesAndGradients(
  state: TrainState,
  batch: Float32Array,
  objective: RectifierLossFn = meanSquaredError,
): Promise<Gradients> {
  const q = state.quantizer;
  const { tokens, codeDim } = q.layout;
  const count = batch.length / (tokens * codeDim);
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(
      `a batch of ${batch.length} values is not whole latents of ${tokens * codeDim}`,
    );
  }
  const x = tf.tensor2d(batch, [count * tokens, codeDim]); // (B·T, D)
  const rows = (await assigner(state.assignment, q))(x, batch);
  const quant = tf.variableGrads(
    () => tf.mean(tf.squaredDifference(gatherCodes(q, rows), x)) as tf.Scalar,
    [q.embeddings],
  );
  // Computed outside any gradient scope, q is a constant here: the stop-gradient.
  const [quantized, target] = tf.tidy(() => [
    toNhwc(gatherCodes(q, rows), state.latentShape, count),
    toNhwc(x, state.latentShape, count),
  ]);
  const variables = state.rectifier.bindings.map((b) => b.param as tf.Variable);
  const rect = tf.variableGrads(
    () => objective(rectify(state.rectifier, quantized), target),
    variables,
  );
  tf.dispose([x, quantized, target]);
  return {
    rows,
    lossQuantizer: quant.value,
    lossRectifier: rect.value,
    quantizer: quant.grads[q.embeddings.name],
    rectifier: variables.map((v) => rect.grads[v.name]),
  };
}

/** A step's numbers, read back from the device. */
export type StepMetrics = {
  lossQuantizer: number;
  lossRectifier: number;
  /** Gradient norms before clipping. */
  gradNormQuantizer: number;
  gradNormRectifier: number;
};

/** A step whose work is queued on the device; its numbers arrive when the device has them. */
export type QueuedStep = { metrics: Promise<StepMetrics> };

export async function trainStep(
  state: TrainState,
  batch: Float32Array,
  objective: RectifierLossFn = meanSquaredError,
): Promise<QueuedStep> {
  return applyGradients(state, await lossesAndGradients(state, batch, objective));
}

/** The second half of a step: clip per module, AdamW, count usage; disposes g's tensors. */
export function applyGradients(state: TrainState, g: Gradients): QueuedStep {
  const sumSquares = adamwStep(state.optimizer, [[g.quantizer], g.rectifier], MAX_GRAD_NORM);
  countUsage(state, g.rows);
  // One read for the step's four numbers.
  const scalars = tf.stack([g.lossQuantizer, g.lossRectifier, ...sumSquares]);
  tf.dispose([
    g.rows,
    g.lossQuantizer,
    g.lossRectifier,
    ...sumSquares,
    g.quantizer,
    ...g.rectifier,
  ]);
  const metrics = scalars.data().then(([lossQuantizer, lossRectifier, squaresQ, squaresR]) => {
    scalars.dispose();
    return {
      lossQuantizer,
      lossRectifier,
      gradNormQuantizer: Math.sqrt(squaresQ),
      gradNormRectifier: Math.sqrt(squaresR),
    };
  });
  return { metrics };
}

/** One hit per token on its code: counts[row] += 1 for each of rows (B·T,). */
function countUsage(state: TrainState, rows: tf.Tensor1D): void {
  tf.tidy(() => {
    const hits = tf.scatterND(tf.expandDims(rows, 1), tf.ones([rows.size]), state.counts.shape);
    state.counts.assign(tf.add(state.counts, hits));
  });
}

/** The usage counts on the host, (G·K,). */
export async function readCounts(state: TrainState): Promise<Float64Array> {
  return Float64Array.from((await state.counts.data()) as Float32Array);
}

/** Sets every usage count to `value` (0 after a dead-code reset). */
export function fillCounts(state: TrainState, value: number): void {
  tf.tidy(() => state.counts.assign(tf.fill(state.counts.shape, value)));
}

/** The sizes usagePerGroup reads (it never touches the codes themselves). */
export function usageShape(q: TrainableQuantizer): Codebook {
  return { groups: q.layout.groups, codes: q.codes, dim: q.layout.codeDim, data: NO_CODES };
}
const NO_CODES = new Float32Array(0);

/** Tokens (B·T, D) in C-H-W order → the latent channels-last, (B, H, W, C), as the rectifier takes it. */
export function toNhwc(tokens: tf.Tensor2D, shape: LatentShape, count: number): tf.Tensor4D {
  const { channels, height, width } = shape;
  return tf.transpose(tf.reshape(tokens, [count, channels, height, width]), [0, 2, 3, 1]);
}
