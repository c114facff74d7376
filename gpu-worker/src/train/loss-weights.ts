/**
 * The per-dimension weights of the rectifier's squared error (a run's `rectifierLossWeighting`,
 * @revq/shared RECTIFIER_LOSS_WEIGHTINGS). `latent-variance`: w_i = std_i² / mean(std²), so the
 * weighted error is the error in the VAE's own units over its mean variance, and the weights
 * average 1 (the loss keeps the scale, hence the learning rate, of the paper's mse).
 */
import type { LatentShape, RectifierLossWeighting } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import type { Normalizer } from "./dataset.ts";

/** (1, H, W, C), channels-last as the rectifier computes; null for the paper's uniform mse. */
export function rectifierLossWeights(
  weighting: RectifierLossWeighting | undefined,
  shape: LatentShape,
  normalizer: Normalizer,
): tf.Tensor4D | null {
  if (!weighting || weighting === "uniform") return null;
  const variance = Float32Array.from(normalizer.std, (s) => s * s); // C-H-W order
  const meanVariance = variance.reduce((a, b) => a + b, 0) / variance.length;
  return channelsLast(
    variance.map((v) => v / meanVariance),
    shape,
  );
}

/** Per-dimension values in C-H-W order → (1, H, W, C). */
export function channelsLast(values: Float32Array, shape: LatentShape): tf.Tensor4D {
  const { channels, height, width } = shape;
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(values, [1, channels, height, width]), [0, 2, 3, 1]),
  );
}
