/**
 * The rectifier's loss in a training step, from a run's `rectifierLoss` (@revq/shared
 * RECTIFIER_LOSSES): ReVQ's squared error on the normalised latent (optionally weighted,
 * loss-weights.ts); the squared error of the frozen VAE decoder's images of the rectified and of
 * the true latent; or of its image of the rectified latent against the dataset's image. The two
 * image losses are back-propagated through the decoder into the rectifier.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Vae } from "../models/vae.ts";
import type { TrainConfig } from "./config.ts";
import type { Normalizer } from "./dataset.ts";
import type { ImageSource } from "./extract.ts";
import { channelsLast, rectifierLossWeights } from "./loss-weights.ts";

/** rectified and target: (B, H, W, C) normalised latents, channels-last → the scalar loss. */
export type RectifierLossFn = (rectified: tf.Tensor4D, target: tf.Tensor4D) => tf.Scalar;

/** One batch's loss; release() frees what was read for it (the image loss's images). */
export type BatchLoss = { loss: RectifierLossFn; release(): void };

export type RectifierObjective = {
  /** The loss of the batch whose latents are these dataset positions. */
  forBatch(indices: readonly number[]): Promise<BatchLoss>;
  dispose(): void;
};

/** What the image losses need: the VAE the latents came from, and for `image` its images. */
export type ObjectiveSources = { vae?: Vae; images?: ImageSource };

/**
 * The decoder's pixel MSE (images in [-1, 1]) times this. A few ×10⁻⁴ on a tokenizer worth using,
 * its gradients would sit near AdamW's eps and the rectifier would barely move
 * (docs/default-tokenizer.md); scaled, the loss is of the latent loss's order.
 */
export const DECODER_LOSS_SCALE = 1000;

export function rectifierObjective(
  config: Pick<TrainConfig, "latentShape" | "rectifierLoss" | "rectifierLossWeighting">,
  normalizer: Normalizer,
  sources: ObjectiveSources = {},
): RectifierObjective {
  if (config.rectifierLoss === undefined) {
    const weights = rectifierLossWeights(
      config.rectifierLossWeighting,
      config.latentShape,
      normalizer,
    );
    const loss: RectifierLossFn = weights
      ? (rectified, target) => tf.mean(tf.mul(tf.squaredDifference(rectified, target), weights))
      : meanSquaredError;
    return fixed(loss, () => weights?.dispose());
  }
  const { vae, images } = sources;
  if (!vae)
    throw new Error(`rectifierLoss ${config.rectifierLoss} needs the VAE the latents came from`);
  const std = channelsLast(normalizer.std, config.latentShape);
  const mean = channelsLast(normalizer.mean, config.latentShape);
  const decode = (normalised: tf.Tensor4D) =>
    vae.decodeTensor(tf.add(tf.mul(normalised, std), mean) as tf.Tensor4D);
  const scaledError = (a: tf.Tensor, b: tf.Tensor) =>
    tf.mul(tf.mean(tf.squaredDifference(a, b)), DECODER_LOSS_SCALE) as tf.Scalar;
  const disposeStats = () => tf.dispose([std, mean]);
  if (config.rectifierLoss === "decoder") {
    const loss: RectifierLossFn = (rectified, target) =>
      scaledError(decode(rectified), decode(target));
    return fixed(loss, disposeStats);
  }
  if (!images) throw new Error("rectifierLoss image needs the dataset's images");
  const { height, width } = vae.inputResolution;
  return {
    async forBatch(indices) {
      const size = height * width * 3;
      const pixels = new Float32Array(indices.length * size);
      const each = await Promise.all(indices.map((i) => images.load(i)));
      for (const [k, image] of each.entries()) {
        if (image.length !== size) {
          throw new RangeError(
            `image ${indices[k]} has ${image.length} values; the VAE takes ${height}×${width}×3`,
          );
        }
        pixels.set(image, k * size);
      }
      const batch = tf.tensor4d(pixels, [indices.length, height, width, 3]);
      return {
        loss: (rectified) => scaledError(decode(rectified), batch),
        release: () => batch.dispose(),
      };
    },
    dispose: disposeStats,
  };
}

/** An objective whose loss is the same for every batch. */
function fixed(loss: RectifierLossFn, dispose: () => void): RectifierObjective {
  const batch: BatchLoss = { loss, release: () => {} };
  return { forBatch: async () => batch, dispose };
}

/** ReVQ's rectifier loss: mse(rectified, target). */
export function meanSquaredError(rectified: tf.Tensor4D, target: tf.Tensor4D): tf.Scalar {
  return tf.mean(tf.squaredDifference(rectified, target));
}
