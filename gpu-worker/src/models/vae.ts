/**
 * What the pipelines need of a VAE, whatever its architecture: a fixed input resolution, a latent
 * shape, and encode/decode between images and latents. Data crosses this boundary as flat
 * Float32Arrays in the method's own orders, so that callers never see the model's tensor layout:
 *
 * - images: `count` × H × W × 3, row-major (interleaved RGB, as image codecs give them), in [-1, 1];
 * - latents: `count` × C × H × W, row-major, which cut into consecutive chunks are the tokens.
 *
 * An implementation converts to its own layout inside (channels-last-vae.ts for NHWC models);
 * load-vae.ts picks the implementation a manifest names.
 */
import type { LatentShape, TokenizerManifest } from "@revq/shared";
import type * as tf from "@tensorflow/tfjs-core";

export type ImageSize = { height: number; width: number };

export interface Vae {
  readonly inputResolution: ImageSize;
  readonly latentShape: LatentShape;
  /** `count` images (count·H·W·3 values in [-1, 1]) → `count` latents (count·C·H·W). */
  encode(images: Float32Array, count: number): Promise<Float32Array>;
  /** `count` latents → `count` images, in [-1, 1] up to the model's overshoot (not clamped). */
  decode(latents: Float32Array, count: number): Promise<Float32Array>;
  /**
   * The decoder as a differentiable tensor function, for training through it (a run's decoder
   * loss): (B, h, w, C) latents, channels-last as the rectifier computes → (B, H, W, 3) images.
   */
  decodeTensor(latents: tf.Tensor4D): tf.Tensor4D;
  /** Frees the weights on the device. */
  dispose(): void;
}

export type VaeSpec = TokenizerManifest["vae"];
