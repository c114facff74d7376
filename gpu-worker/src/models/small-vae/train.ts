/**
 * Training the small VAE: the reconstruction loss and an Adam step over its parameters. Adam is
 * written out here (not tf.train.adam) so that its moments are tensors of the parameters' shapes,
 * which checkpoint.ts writes and reads with the parameters' own PyTorch names and layouts.
 */

import * as tf from "@tensorflow/tfjs-core";
import { decode, encode, type SmallVae } from "./model.ts";

export type AdamOptions = { beta1: number; beta2: number; eps: number; clipNorm: number };
export const ADAM_DEFAULTS: AdamOptions = { beta1: 0.9, beta2: 0.99, eps: 1e-8, clipNorm: 1 };

/** Adam's state: steps taken and the two moments, one per binding of the model. */
export type AdamState = { step: number; m: tf.Variable[]; v: tf.Variable[] };

export function createAdam(vae: SmallVae): AdamState {
  const zeros = () => vae.bindings.map((b) => tf.variable(tf.zerosLike(b.param), false));
  return { step: 0, m: zeros(), v: zeros() };
}

export function disposeAdam(state: AdamState): void {
  tf.dispose([...state.m, ...state.v]);
}

/**
 * mean |x̂ − x| + mean (x̂ − x)² on images in [-1, 1]. The L1 term keeps gradients from vanishing
 * once errors are small (sharper edges than MSE alone); the MSE term is what PSNR measures.
 */
export function reconstructionLoss(vae: SmallVae, images: tf.Tensor4D): tf.Scalar {
  const error = tf.sub(decode(vae, encode(vae, images)), images);
  return tf.add(tf.mean(tf.abs(error)), tf.mean(tf.square(error)));
}

/**
 * One step on a batch: gradients, clipped to a global norm of `clipNorm` (a bad batch early on
 * cannot throw the weights far), then Adam with bias correction. Returns the batch's loss.
 */
export async function trainStep(
  vae: SmallVae,
  adam: AdamState,
  images: tf.Tensor4D,
  lr: number,
  options: AdamOptions = ADAM_DEFAULTS,
): Promise<number> {
  const params = vae.bindings.map((b) => b.param as tf.Variable);
  const { value, grads } = tf.variableGrads(() => reconstructionLoss(vae, images), params);
  adam.step++;
  const { beta1, beta2, eps, clipNorm } = options;
  const t = adam.step;
  tf.tidy(() => {
    const g = params.map((p) => grads[p.name]);
    const norm = tf.sqrt(tf.addN(g.map((x) => tf.sum(tf.square(x)))));
    const scale = tf.minimum(1, tf.div(clipNorm, tf.add(norm, 1e-12)));
    // Bias correction folded into the step size (Kingma & Ba's efficient form of Adam).
    const stepSize = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
    params.forEach((p, i) => {
      const gi = tf.mul(g[i], scale);
      const m = tf.add(tf.mul(adam.m[i], beta1), tf.mul(gi, 1 - beta1));
      const v = tf.add(tf.mul(adam.v[i], beta2), tf.mul(tf.square(gi), 1 - beta2));
      adam.m[i].assign(m);
      adam.v[i].assign(v);
      p.assign(tf.sub(p, tf.mul(tf.div(m, tf.add(tf.sqrt(v), eps)), stepSize)));
    });
  });
  const loss = (await value.data())[0];
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}
