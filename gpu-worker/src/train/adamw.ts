/**
 * AdamW with PyTorch's semantics (torch.optim.AdamW, single-tensor path; fixtures README §6),
 * on the device. Per parameter p with gradient g, at step t of its group:
 *
 *   p ← p·(1 − lr·wd)                      decoupled weight decay, before the moments
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * Parameter groups carry their own learning rate and weight decay (ReVQ: the quantizer at 0.01
 * without decay, the rectifier at 0.0005 with 1e-4), and their own step count, which the
 * checkpoint keeps with the moments.
 */

import * as tf from "@tensorflow/tfjs-core";

export type AdamWHyper = { beta1: number; beta2: number; eps: number };

/** torch.optim.AdamW's defaults, which ReVQ keeps. */
export const TORCH_ADAMW: AdamWHyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export type ParamGroupSpec = { params: tf.Variable[]; lr: number; weightDecay: number };

export type ParamGroup = ParamGroupSpec & {
  /** Updates done so far (t of the last update). */
  step: number;
  /** First and second moments, one pair per parameter, zero before the first update. */
  m: tf.Variable[];
  v: tf.Variable[];
};

export type AdamW = { hyper: AdamWHyper; groups: ParamGroup[] };

export function createAdamW(specs: ParamGroupSpec[], hyper: AdamWHyper = TORCH_ADAMW): AdamW {
  // tidy frees the zeros the variable was made from (variables outlive it).
  const zeros = (p: tf.Variable) => tf.tidy(() => tf.variable(tf.zerosLike(p), false));
  const groups = specs.map((spec) => ({
    ...spec,
    step: 0,
    m: spec.params.map(zeros),
    v: spec.params.map(zeros),
  }));
  return { hyper, groups };
}

/** One update of every parameter; grads[i][j] is the gradient of groups[i].params[j]. */
export function adamwStep(opt: AdamW, grads: tf.Tensor[][]): void {
  const { beta1, beta2, eps } = opt.hyper;
  opt.groups.forEach((group, i) => {
    if (grads[i].length !== group.params.length) {
      throw new Error(
        `AdamW: group ${i} has ${group.params.length} parameters, got ${grads[i].length} gradients`,
      );
    }
    group.step += 1;
    const stepSize = group.lr / (1 - beta1 ** group.step);
    const correction2 = Math.sqrt(1 - beta2 ** group.step);
    const decay = 1 - group.lr * group.weightDecay;
    tf.tidy(() => {
      group.params.forEach((p, j) => {
        const g = grads[i][j];
        const m = group.m[j];
        const v = group.v[j];
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), correction2), eps);
        const decayed = group.weightDecay === 0 ? p : tf.mul(p, decay);
        p.assign(tf.sub(decayed, tf.div(tf.mul(m, stepSize), denom)));
      });
    });
  });
}

export function disposeAdamW(opt: AdamW): void {
  for (const group of opt.groups) tf.dispose([...group.m, ...group.v]);
}
