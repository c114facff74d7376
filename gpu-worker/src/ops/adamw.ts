/**
 * One AdamW update of a whole parameter group, clipping included (PyTorch's semantics:
 * clip_grad_norm_ then torch.optim.AdamW's single-tensor path; fixtures README §6). With g the
 * group's gradient and S = Σ g² over the group:
 *
 *   g ← g · min(1, maxNorm / (√S + 1e-6))  clip_grad_norm_
 *   p ← p·(1 − lr·wd)                       decoupled weight decay, before the moments
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * Done tensor by tensor with tfjs ops this is ~15 kernels per parameter. Here the moments are
 * one flattened vector per group, updated by one op (two dispatches on webgpu), and each
 * parameter is updated in place of its own span of them by a second op (one dispatch each):
 * backends/webgpu/adamw.ts.
 */

import * as tf from "@tensorflow/tfjs-core";
import { fromOps, registerReferenceKernel } from "../backends/op-kernels.ts";

/** Inputs m, v, grad (P,), sumSquares (); outputs m, v (P,). */
export const ADAMW_MOMENTS = "RevqAdamWMoments";
/** Inputs param (any shape), m, v (P,), the updated moments; output the parameter. */
export const ADAMW_PARAM = "RevqAdamWParam";
export const SUM_SQUARES = "RevqSumSquares";

/** The moments' numbers; numbers, so that a GPU kernel takes them as uniforms. */
export type MomentAttrs = { beta1: number; beta2: number; maxNorm: number };

export type ParamAttrs = {
  /** Where the parameter's values start in the flattened group. */
  offset: number;
  eps: number;
  /** lr / (1 − β1ᵗ) */
  stepSize: number;
  /** √(1 − β2ᵗ) */
  correction2: number;
  /** 1 − lr·wd */
  decay: number;
};

export type Moments = { m: tf.Tensor1D; v: tf.Tensor1D };

/** The group's moments after the update, from its gradient (P,) and sumSquares () = Σ grad². */
export function adamwMoments(
  moments: Moments,
  grad: tf.Tensor1D,
  sumSquares: tf.Scalar,
  attrs: MomentAttrs,
): Moments {
  const inputs = { ...moments, grad, sumSquares };
  const [m, v] = tf
    .engine()
    .runKernel(
      ADAMW_MOMENTS,
      inputs,
      attrs as unknown as tf.NamedAttrMap,
    ) as unknown as tf.Tensor1D[];
  return { m, v };
}

/** A parameter after the update, from the group's updated moments. */
export function adamwParam<T extends tf.Tensor>(param: T, moments: Moments, attrs: ParamAttrs): T {
  const inputs = { param, ...moments };
  return tf.engine().runKernel(ADAMW_PARAM, inputs, attrs as unknown as tf.NamedAttrMap) as T;
}

/**
 * Σ x² over a whole flattened group, (P,) → (). tfjs reduces a tensor to one value in a single
 * workgroup; a GPU kernel of this op spreads the sum over many (backends/webgpu/adamw.ts).
 */
export function sumSquares(x: tf.Tensor1D): tf.Scalar {
  return tf.engine().runKernel(SUM_SQUARES, { x }) as tf.Scalar;
}

/** The clip coefficient min(1, maxNorm / (√S + 1e-6)), as clip_grad_norm_ computes it. */
function clipCoefficient(sumSquares: tf.Scalar, maxNorm: number): tf.Scalar {
  return tf.minimum(tf.div(maxNorm, tf.add(tf.sqrt(sumSquares), 1e-6)), 1);
}

/** The plain compositions: the references the fast kernels are tested against. */
export function adamwMomentsReference(
  moments: Moments,
  grad: tf.Tensor1D,
  sumSquares: tf.Scalar,
  a: MomentAttrs,
): Moments {
  const g = tf.mul(grad, clipCoefficient(sumSquares, a.maxNorm));
  const m = tf.add(tf.mul(moments.m, a.beta1), tf.mul(g, 1 - a.beta1));
  const v = tf.add(tf.mul(moments.v, a.beta2), tf.mul(tf.square(g), 1 - a.beta2));
  return { m, v } as Moments;
}

export function adamwParamReference<T extends tf.Tensor>(
  param: T,
  moments: Moments,
  a: ParamAttrs,
): T {
  // A group of one parameter (the codebook) is all span: slicing it would copy it (slowly, on wasm).
  const whole = param.size === moments.m.size;
  const span = (t: tf.Tensor1D) =>
    tf.reshape(whole ? t : tf.slice(t, a.offset, param.size), param.shape);
  const denom = tf.add(tf.div(tf.sqrt(span(moments.v)), a.correction2), a.eps);
  const decayed = a.decay === 1 ? param : tf.mul(param, a.decay);
  return tf.sub(decayed, tf.div(tf.mul(span(moments.m), a.stepSize), denom)) as T;
}

registerReferenceKernel(
  SUM_SQUARES,
  fromOps((i) => tf.sum(tf.square(i.x))),
);

registerReferenceKernel(
  ADAMW_MOMENTS,
  fromOps((i, attrs) => {
    const moments = { m: i.m, v: i.v } as Moments;
    const out = adamwMomentsReference(
      moments,
      i.grad as tf.Tensor1D,
      i.sumSquares as tf.Scalar,
      attrs as unknown as MomentAttrs,
    );
    return [out.m, out.v];
  }),
);

registerReferenceKernel(
  ADAMW_PARAM,
  fromOps((i, attrs) =>
    adamwParamReference(i.param, { m: i.m, v: i.v } as Moments, attrs as unknown as ParamAttrs),
  ),
);
