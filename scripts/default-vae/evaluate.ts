/**
 * Held-out quality of the small VAE: PSNR and SSIM (gpu-worker/src/train/image-metrics.ts: on
 * [0, 1] after clamping, SSIM with an 11×11 Gaussian window over the valid part) of each fixed
 * crop's reconstruction, averaged overall and per scale.
 */

import * as tf from "@tensorflow/tfjs-core";
import { decode, encode, type SmallVae } from "../../gpu-worker/src/models/small-vae/model.ts";
import { psnr, ssim } from "../../gpu-worker/src/train/image-metrics.ts";
import { CROP, type FixedCrop } from "./photos.ts";

export type Quality = { crops: number; psnr: number; ssim: number };
export type Evaluation = Quality & { byScale: Record<string, Quality>; perCrop: number[] };

const SIZE = { height: CROP, width: CROP };
const BATCH = 16;

/** Reconstructions of `images` (count × 64 × 64 × 3 in [-1, 1]), in batches. */
export async function reconstruct(vae: SmallVae, images: Float32Array, count: number) {
  const each = CROP * CROP * 3;
  const out = new Float32Array(count * each);
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const batch = images.subarray(start * each, (start + n) * each);
    const y = tf.tidy(() => decode(vae, encode(vae, tf.tensor4d(batch, [n, CROP, CROP, 3]))));
    out.set((await y.data()) as Float32Array, start * each);
    y.dispose();
  }
  return out;
}

export async function evaluate(vae: SmallVae, crops: FixedCrop[]): Promise<Evaluation> {
  const each = CROP * CROP * 3;
  const images = new Float32Array(crops.length * each);
  for (const [i, c] of crops.entries()) images.set(c.pixels, i * each);
  const out = await reconstruct(vae, images, crops.length);
  const p = psnr(out, images, crops.length, SIZE);
  const s = ssim(out, images, crops.length, SIZE);
  const summary = (indices: number[]): Quality => ({
    crops: indices.length,
    psnr: round(mean(indices.map((i) => p[i]))),
    ssim: round(mean(indices.map((i) => s[i])), 4),
  });
  const scales = [...new Set(crops.map((c) => c.scale))].sort((a, b) => a - b);
  const byScale = Object.fromEntries(
    scales.map((scale) => [
      `${scale}`,
      summary(crops.flatMap((c, i) => (c.scale === scale ? [i] : []))),
    ]),
  );
  return { ...summary(crops.map((_, i) => i)), byScale, perCrop: [...p].map((v) => round(v)) };
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;
