/**
 * The rectifier's loss in a training step, from a run's `rectifierLoss` (@revq/shared
 * RECTIFIER_LOSSES): ReVQ's squared error on the normalised latent (optionally weighted,
 * loss-weights.ts), or the squared error of the frozen VAE decoder's images of the rectified and
 * of the true latent, back-propagated through the decoder into the rectifier.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Vae } from "../models/vae.ts";
import type { TrainConfig } from "./config.ts";
import type { Normalizer } from "./dataset.ts";
import { channelsLast, rectifierLossWeights } from "./loss-weights.ts";

/** rectified and target: (B, H, W, C) normalised latents, channels-last → the scalar loss. */
export type RectifierObjective = {
  loss(rectified: tf.Tensor4D, target: tf.Tensor4D): tf.Scalar;
  dispose(): void;
};

/**
 * The decoder's pixel MSE (images in [-1, 1]) times this. A few ×10⁻⁴ on a tokenizer worth using,
 * its gradients would sit near AdamW's eps and the rectifier would barely move
 * (docs/default-tokenizer.md); scaled, the loss is of the latent loss's order.
 */
export const DECODER_LOSS_SCALE = 1000;

export function rectifierObjective(
  config: Pick<TrainConfig, "latentShape" | "rectifierLoss" | "rectifierLossWeighting">,
  normalizer: Normalizer,
  vae?: Vae,
): RectifierObjective {
  if (config.rectifierLoss !== "decoder") {
    const weights = rectifierLossWeights(
      config.rectifierLossWeighting,
      config.latentShape,
      normalizer,
    );
    return {
      loss: weights
        ? (rectified, target) => tf.mean(tf.mul(tf.squaredDifference(rectified, target), weights))
        : meanSquaredError,
      dispose: () => weights?.dispose(),
    };
  }
  if (!vae) throw new Error("rectifierLoss decoder needs the VAE the latents came from");
  const std = channelsLast(normalizer.std, config.latentShape);
  const mean = channelsLast(normalizer.mean, config.latentShape);
  const images = (normalised: tf.Tensor4D) =>
    vae.decodeTensor(tf.add(tf.mul(normalised, std), mean) as tf.Tensor4D);
  return {
    loss: (rectified, target) =>
      tf.mul(tf.mean(tf.squaredDifference(images(rectified), images(target))), DECODER_LOSS_SCALE),
    dispose: () => tf.dispose([std, mean]),
  };
}

/** ReVQ's rectifier loss: mse(rectified, target). */
export function meanSquaredError(rectified: tf.Tensor4D, target: tf.Tensor4D): tf.Scalar {
  return tf.mean(tf.squaredDifference(rectified, target));
}
