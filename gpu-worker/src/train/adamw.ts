/**
 * AdamW with PyTorch's semantics (torch.optim.AdamW, single-tensor path; fixtures README §6),
 * on the device. Per parameter p with gradient g, at step t of its group:
 *
 *   p ← p·(1 − lr·wd)                      decoupled weight decay, before the moments
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * after each module's gradient is clipped to a global norm (clip_grad_norm_). Parameter groups
 * carry their own learning rate and weight decay (ReVQ: the quantizer at 0.01 without decay, the
 * rectifier at 0.0005 with 1e-4), and their own step count, which the checkpoint keeps with the
 * moments. A group's moments are one flattened vector, updated by the fused ops of ops/adamw.ts.
 */

import * as tf from "@tensorflow/tfjs-core";
import { adamwMoments, adamwParam, sumSquares } from "../ops/adamw.ts";

export type AdamWHyper = { beta1: number; beta2: number; eps: number };

/** torch.optim.AdamW's defaults, which ReVQ keeps. */
export const TORCH_ADAMW: AdamWHyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export type ParamGroupSpec = { params: tf.Variable[]; lr: number; weightDecay: number };

export type ParamGroup = ParamGroupSpec & {
  /** Updates done so far (t of the last update). */
  step: number;
  /**
   * First and second moments of all the group's parameters, flattened in order (P,): the update
   * runs over the whole group at once. momentsOf gives them per parameter.
   */
  m: tf.Variable<tf.Rank.R1>;
  v: tf.Variable<tf.Rank.R1>;
};

export type AdamW = { hyper: AdamWHyper; groups: ParamGroup[] };

export function createAdamW(specs: ParamGroupSpec[], hyper: AdamWHyper = TORCH_ADAMW): AdamW {
  const groups = specs.map((spec) => {
    const size = spec.params.reduce((n, p) => n + p.size, 0);
    // tidy frees the zeros the variables were made from (variables outlive it).
    const [m, v] = tf.tidy(() => [0, 1].map(() => tf.variable(tf.zeros([size]), false)));
    return { ...spec, step: 0, m, v } as ParamGroup;
  });
  return { hyper, groups };
}

/**
 * One update of every parameter, each group's gradients clipped to a global norm of maxNorm
 * first; grads[i][j] is the gradient of groups[i].params[j]. Returns each group's Σ g² before
 * clipping (its gradient norm squared), left on the device for the caller to read when it likes.
 */
export function adamwStep(opt: AdamW, grads: tf.Tensor[][], maxNorm: number): tf.Scalar[] {
  return opt.groups.map((group, i) => {
    if (grads[i].length !== group.params.length) {
      throw new Error(
        `AdamW: group ${i} has ${group.params.length} parameters, got ${grads[i].length} gradients`,
      );
    }
    group.step += 1;
    return tf.tidy(() => {
      const grad = flatten(grads[i]);
      const squares = sumSquares(grad);
      const { beta1, beta2, eps } = opt.hyper;
      const moments = adamwMoments({ m: group.m, v: group.v }, grad, squares, {
        beta1,
        beta2,
        maxNorm,
      });
      group.m.assign(moments.m);
      group.v.assign(moments.v);
      const at = {
        eps,
        stepSize: group.lr / (1 - beta1 ** group.step),
        correction2: Math.sqrt(1 - beta2 ** group.step),
        decay: 1 - group.lr * group.weightDecay,
      };
      let offset = 0;
      for (const p of group.params) {
        p.assign(adamwParam(p, moments, { ...at, offset }));
        offset += p.size;
      }
      return tf.keep(squares);
    });
  });
}

/** Tensors → their values end to end (P,); one tensor is only reshaped. */
function flatten(tensors: tf.Tensor[]): tf.Tensor1D {
  const flat = tensors.map((t) => tf.reshape(t, [-1]));
  return (flat.length === 1 ? flat[0] : tf.concat(flat)) as tf.Tensor1D;
}

/** flat (P,) → tensors shaped like `like`, in order. */
function unflatten(flat: tf.Tensor1D, like: tf.Tensor[]): tf.Tensor[] {
  if (like.length === 1) return [tf.reshape(flat, like[0].shape)];
  const parts = tf.split(
    flat,
    like.map((t) => t.size),
  );
  return parts.map((part, j) => tf.reshape(part, like[j].shape));
}

/** A group's moments per parameter, shaped like its parameters (new tensors: dispose them). */
export function momentsOf(group: ParamGroup): { m: tf.Tensor[]; v: tf.Tensor[] } {
  return tf.tidy(() => ({
    m: unflatten(group.m, group.params),
    v: unflatten(group.v, group.params),
  }));
}

/** Sets a group's moments from per-parameter values shaped like its parameters. */
export function setMoments(group: ParamGroup, m: tf.Tensor[], v: tf.Tensor[]): void {
  const sizes = [m, v].map((tensors) => tensors.reduce((n, t) => n + t.size, 0));
  if (sizes.some((size) => size !== group.m.size)) {
    throw new RangeError(`AdamW: moments of ${sizes} values for a group of ${group.m.size}`);
  }
  tf.tidy(() => {
    group.m.assign(flatten(m));
    group.v.assign(flatten(v));
  });
}

export function disposeAdamW(opt: AdamW): void {
  for (const group of opt.groups) tf.dispose([group.m, group.v]);
}
