/**
 * One AdamW update of a whole parameter group, clipping included, as one op over the group's
 * flattened parameters (PyTorch's semantics: clip_grad_norm_ then torch.optim.AdamW's
 * single-tensor path; fixtures README §6). With g the gradient and S = Σ g² over the group:
 *
 *   g ← g · min(1, maxNorm / (√S + 1e-6))  clip_grad_norm_
 *   p ← p·(1 − lr·wd)                       decoupled weight decay, before the moments
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * Done tensor by tensor with tfjs ops this is ~15 kernels per parameter; as one op over the
 * flattened group, a GPU backend runs it in three dispatches (backends/webgpu/adamw.ts).
 */

import * as tf from "@tensorflow/tfjs-core";
import { fromOps, registerReferenceKernel } from "../backends/op-kernels.ts";

export const ADAMW = "RevqAdamW";
export const SUM_SQUARES = "RevqSumSquares";

/** Everything but the tensors; numbers, so that a GPU kernel takes them as uniforms. */
export type AdamWAttrs = {
  beta1: number;
  beta2: number;
  eps: number;
  maxNorm: number;
  /** lr / (1 − β1ᵗ) */
  stepSize: number;
  /** √(1 − β2ᵗ) */
  correction2: number;
  /** 1 − lr·wd */
  decay: number;
};

/** A flattened group: parameters and both moments, each (P,). */
export type FlatGroup = { param: tf.Tensor1D; m: tf.Tensor1D; v: tf.Tensor1D };

/** The group after the update, from its gradient (P,) and sumSquares () = Σ grad². */
export function adamwUpdate(
  group: FlatGroup,
  grad: tf.Tensor1D,
  sumSquares: tf.Scalar,
  attrs: AdamWAttrs,
): FlatGroup {
  const inputs = { ...group, grad, sumSquares };
  const [param, m, v] = tf
    .engine()
    .runKernel(ADAMW, inputs, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor1D[];
  return { param, m, v };
}

/**
 * Σ x² over a whole flattened group, (P,) → (). tfjs reduces a tensor to one value in a single
 * workgroup; a GPU kernel of this op spreads the sum over many (backends/webgpu/adamw.ts).
 */
export function sumSquares(x: tf.Tensor1D): tf.Scalar {
  return tf.engine().runKernel(SUM_SQUARES, { x }) as tf.Scalar;
}

/** The clip coefficient min(1, maxNorm / (√S + 1e-6)), as clip_grad_norm_ computes it. */
export function clipCoefficient(sumSquares: tf.Scalar, maxNorm: number): tf.Scalar {
  return tf.minimum(tf.div(maxNorm, tf.add(tf.sqrt(sumSquares), 1e-6)), 1);
}

/** The plain composition: the reference the fast kernels are tested against. */
export function adamwReference(
  group: FlatGroup,
  grad: tf.Tensor1D,
  sumSquares: tf.Scalar,
  a: AdamWAttrs,
): FlatGroup {
  const g = tf.mul(grad, clipCoefficient(sumSquares, a.maxNorm));
  const m = tf.add(tf.mul(group.m, a.beta1), tf.mul(g, 1 - a.beta1));
  const v = tf.add(tf.mul(group.v, a.beta2), tf.mul(tf.square(g), 1 - a.beta2));
  const denom = tf.add(tf.div(tf.sqrt(v), a.correction2), a.eps);
  const decayed = a.decay === 1 ? group.param : tf.mul(group.param, a.decay);
  const param = tf.sub(decayed, tf.div(tf.mul(m, a.stepSize), denom));
  return { param, m, v } as FlatGroup;
}

registerReferenceKernel(
  SUM_SQUARES,
  fromOps((i) => tf.sum(tf.square(i.x))),
);

registerReferenceKernel(
  ADAMW,
  fromOps((i, attrs) => {
    const group = { param: i.param, m: i.m, v: i.v } as FlatGroup;
    const out = adamwReference(
      group,
      i.grad as tf.Tensor1D,
      i.sumSquares as tf.Scalar,
      attrs as unknown as AdamWAttrs,
    );
    return [out.param, out.m, out.v];
  }),
);
