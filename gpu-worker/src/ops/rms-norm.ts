/**
 * RMSNorm over the last (channel) axis as one op, with its gradient as a second one:
 *
 *   r = 1 / √(mean_c x² + eps),  x̂ = x·r,  y = x̂·weight + bias (+ residual)
 *
 * The optional residual is the block's skip connection (every RMSNorm of DC-AE's blocks ends
 * one), added in the same pass instead of in a dispatch of its own; its gradient is dy.
 * As tfjs ops the forward is ~7 kernels and its autodiff gradient many more; a GPU backend runs
 * the forward in one dispatch and the gradient in a few (backends/webgpu/rms-norm.ts). Every
 * backend gets a reference kernel made of ops, so the op and its gradient work everywhere.
 */

import * as tf from "@tensorflow/tfjs-core";
import { fromOps, hasFastKernel, registerReferenceKernel } from "../backends/op-kernels.ts";

/** Inputs x [..., C], weight [C], bias [C], optional residual like x; attr eps. Output y like x. */
export const RMS_NORM = "RevqRmsNorm";
/** Inputs dy [..., C], x [..., C], weight [C]; attr eps. Outputs dx, dweight [C], dbias [C]. */
export const RMS_NORM_GRAD = "RevqRmsNormGrad";

export type RmsNormAttrs = { eps: number };

/** y [..., C] = x / √(mean_c x² + eps) · weight + bias (+ residual), as one kernel. */
export function rmsNormOp<T extends tf.Tensor>(
  x: T,
  weight: tf.Tensor1D,
  bias: tf.Tensor1D,
  eps: number,
  residual?: T,
): T {
  if (residual && !tf.util.arraysEqual(residual.shape, x.shape)) {
    throw new Error(`rmsNormOp: residual [${residual.shape}] is not shaped like x [${x.shape}]`);
  }
  if (!hasFastKernel(RMS_NORM)) return rmsNormReference(x, weight, bias, eps, residual);
  const attrs: RmsNormAttrs = { eps };
  const inputs: tf.NamedTensorMap = residual ? { x, weight, bias, residual } : { x, weight, bias };
  return tf.engine().runKernel(RMS_NORM, inputs, attrs as unknown as tf.NamedAttrMap) as T;
}

/** The plain composition, in layers.ts's order of ops (cpu results match it exactly). */
export function rmsNormReference<T extends tf.Tensor>(
  x: T,
  weight: tf.Tensor1D,
  bias: tf.Tensor1D,
  eps: number,
  residual?: T,
): T {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  const y: T = tf.add(tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), weight), bias);
  return residual ? tf.add(y, residual) : y;
}

/**
 * [dx [..., C], dweight [C], dbias [C]] written out by hand: with g = dy·weight,
 * dx = r·(g − x̂·mean_c(g·x̂)), dweight = Σ_rows dy·x̂, dbias = Σ_rows dy.
 */
export function rmsNormGradReference(
  dy: tf.Tensor,
  x: tf.Tensor,
  weight: tf.Tensor1D,
  eps: number,
): [tf.Tensor, tf.Tensor1D, tf.Tensor1D] {
  const r = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)); // [..., 1]
  const xhat = tf.mul(x, r);
  const g = tf.mul(dy, weight);
  const dx = tf.mul(r, tf.sub(g, tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))));
  const channels = x.shape[x.rank - 1];
  const rows = (t: tf.Tensor) => tf.reshape(t, [-1, channels]);
  const dweight = tf.sum(rows(tf.mul(dy, xhat)), 0) as tf.Tensor1D;
  const dbias = tf.sum(rows(dy), 0) as tf.Tensor1D;
  return [dx, dweight, dbias];
}

const epsOf = (attrs: unknown) => (attrs as RmsNormAttrs).eps;

registerReferenceKernel(
  RMS_NORM,
  fromOps((i, attrs) =>
    rmsNormReference(i.x, i.weight as tf.Tensor1D, i.bias as tf.Tensor1D, epsOf(attrs), i.residual),
  ),
);

registerReferenceKernel(
  RMS_NORM_GRAD,
  fromOps((i, attrs) => rmsNormGradReference(i.dy, i.x, i.weight as tf.Tensor1D, epsOf(attrs))),
);

tf.registerGradient({
  kernelName: RMS_NORM,
  inputsToSave: ["x", "weight"],
  gradFunc: (dy, saved, attrs) => {
    const [x, weight] = saved;
    const [dx, dweight, dbias] = tf
      .engine()
      .runKernel(RMS_NORM_GRAD, { dy: dy as tf.Tensor, x, weight }, attrs) as tf.Tensor[];
    // The engine asks only for the inputs the op was given: residual's is read when it was.
    return {
      x: () => dx,
      weight: () => dweight,
      bias: () => dbias,
      residual: () => dy as tf.Tensor,
    };
  },
});
