/**
 * Validation after each epoch on held-out latents (the reference's val loop, plus more):
 * latent MSE before the rectifier (quantization alone) and after it, in normalised units; and,
 * when a VAE is at hand, PSNR/SSIM of images decoded from their tokens on a few held-out images,
 * beside the VAE's own reconstruction of the same images (the ceiling a tokenizer can reach),
 * and against that reconstruction. The last epoch's is the tokenizer's evaluation (metrics.ts).
 */

import { denormalize } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { rectify } from "../models/rectifier.ts";
import type { Vae } from "../models/vae.ts";
import { type Assign, assigner } from "./assign.ts";
import { gatherLatents, type LatentSet, type Normalizer, normalizeLatents } from "./dataset.ts";
import { letEventLoopTurn } from "./event-loop.ts";
import { psnr, ssim } from "./image-metrics.ts";
import { gatherCodes } from "./quantizer.ts";
import { type TrainState, toNhwc } from "./step.ts";

/** A few held-out images, their latents, and what the VAE alone makes of them. */
export type ImageProbe = {
  vae: Vae;
  count: number;
  /** (count, H, W, 3) in [-1, 1]. */
  pixels: Float32Array;
  /** (count, C·H·W), raw. */
  latents: Float32Array;
  /** The VAE's own reconstruction of `pixels`, in their layout. */
  decoded: Float32Array;
  vaePsnr: number;
  vaeSsim: number;
};

export async function imageProbe(
  vae: Vae,
  pixels: Float32Array,
  count: number,
): Promise<ImageProbe> {
  const latents = await vae.encode(pixels, count);
  const decoded = await vae.decode(latents, count);
  const size = vae.inputResolution;
  return {
    vae,
    count,
    pixels,
    latents,
    decoded,
    vaePsnr: mean(psnr(decoded, pixels, count, size)),
    vaeSsim: mean(ssim(decoded, pixels, count, size)),
  };
}

export type Validation = {
  /** Held-out latents measured. */
  latents: number;
  /** mse(x, q): quantization alone. */
  latentMse: number;
  /** mse(x, rectifier(q)). */
  rectifiedMse: number;
  /** Of images decoded from tokens, when there is an image probe. */
  psnr?: number;
  ssim?: number;
  vaePsnr?: number;
  vaeSsim?: number;
  /** Held-out images decoded, and those decoded from tokens against the VAE's own. */
  images?: number;
  psnrToVae?: number;
  ssimToVae?: number;
};

export async function validate(
  state: TrainState,
  normalizer: Normalizer,
  heldOut: LatentSet,
  batchSize: number,
  probe?: ImageProbe,
): Promise<Validation> {
  const assign = await assigner(state.assignment, state.quantizer);
  let quantSum = 0;
  let rectSum = 0;
  for (let start = 0; start < heldOut.count; start += batchSize) {
    const indices = Array.from(
      { length: Math.min(batchSize, heldOut.count - start) },
      (_, i) => start + i,
    );
    const batch = normalizeLatents(gatherLatents(heldOut, indices), normalizer);
    const r = await reconstruct(state, assign, batch);
    quantSum += r.quantSquares;
    rectSum += r.rectSquares;
    await letEventLoopTurn();
  }
  const values = heldOut.count * heldOut.dims;
  const result: Validation = {
    latents: heldOut.count,
    latentMse: quantSum / values,
    rectifiedMse: rectSum / values,
  };
  if (!probe) return result;
  const normalized = normalizeLatents(probe.latents, normalizer);
  const { rectified } = await reconstruct(state, assign, normalized);
  const decoded = await probe.vae.decode(
    denormalize(rectified, normalizer.mean, normalizer.std),
    probe.count,
  );
  const size = probe.vae.inputResolution;
  return {
    ...result,
    psnr: mean(psnr(decoded, probe.pixels, probe.count, size)),
    ssim: mean(ssim(decoded, probe.pixels, probe.count, size)),
    vaePsnr: probe.vaePsnr,
    vaeSsim: probe.vaeSsim,
    images: probe.count,
    psnrToVae: mean(psnr(decoded, probe.decoded, probe.count, size)),
    ssimToVae: mean(ssim(decoded, probe.decoded, probe.count, size)),
  };
}

/**
 * Normalised latents (B, C·H·W) → their sums of squared errors before and after the rectifier,
 * and the rectified latents in the same layout.
 */
async function reconstruct(state: TrainState, assign: Assign, batch: Float32Array) {
  const q = state.quantizer;
  const { tokens, codeDim } = q.layout;
  const count = batch.length / (tokens * codeDim);
  const x = tf.tensor2d(batch, [count * tokens, codeDim]);
  const rows = assign(x, batch);
  const [quantSquares, rectSquares, rectified] = tf.tidy(() => {
    const quantized = gatherCodes(q, rows); // (B·T, D)
    const rec = rectify(state.rectifier, toNhwc(quantized, state.latentShape, count));
    const target = toNhwc(x, state.latentShape, count);
    return [
      tf.sum(tf.squaredDifference(quantized, x)),
      tf.sum(tf.squaredDifference(rec, target)),
      tf.transpose(rec, [0, 3, 1, 2]), // back to C-H-W order
    ];
  });
  tf.dispose([x, rows]);
  const [qs, rs, data] = await Promise.all([
    quantSquares.data(),
    rectSquares.data(),
    rectified.data(),
  ]);
  tf.dispose([quantSquares, rectSquares, rectified]);
  return { quantSquares: qs[0], rectSquares: rs[0], rectified: data as Float32Array };
}

function mean(values: Float64Array): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
