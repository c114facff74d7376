/**
 * What the rectifier diagnosis tools (diagnose.ts, rectifier-experiments.ts) measure on: raw
 * latents normalised with a tokenizer's statistics and quantized with its codebook, and latents
 * passed through a rectifier, all in C-H-W order.
 */
import { lookupCodes, normalize } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { type Rectifier, rectify } from "../../gpu-worker/src/models/rectifier.ts";
import type { Tokenizer } from "../../gpu-worker/src/pipeline/tokenizer.ts";

/**
 * The smooth part of the error y − x, as a latent: x plus the error blurred by a 3×3 box within
 * each channel plane of `height` × `width` (the mean over the neighbours inside the plane).
 */
export function smoothPart(x: Float32Array, y: Float32Array, height: number, width: number) {
  const out = Float32Array.from(x);
  for (let at = 0; at < x.length; at += height * width) {
    for (let row = 0; row < height; row++) {
      for (let col = 0; col < width; col++) {
        let sum = 0;
        let m = 0;
        for (let r = Math.max(0, row - 1); r <= Math.min(height - 1, row + 1); r++) {
          for (let c = Math.max(0, col - 1); c <= Math.min(width - 1, col + 1); c++) {
            sum += y[at + r * width + c] - x[at + r * width + c];
            m++;
          }
        }
        out[at + row * width + col] += sum / m;
      }
    }
  }
  return out;
}

/** Mean squared difference of two latents. */
export function latentMse(x: Float32Array, y: Float32Array): number {
  let e = 0;
  for (let k = 0; k < x.length; k++) e += (y[k] - x[k]) ** 2;
  return e / x.length;
}

/** `count` raw latents → their normalised values x and quantized codes q (same layout). */
export function quantizeLatents(t: Tokenizer, raw: Float32Array, count: number) {
  const dims = raw.length / count;
  const x = new Float32Array(raw.length);
  const q = new Float32Array(raw.length);
  for (let i = 0; i < count; i++) {
    const z = normalize(raw.subarray(i * dims, (i + 1) * dims), t.mean, t.std);
    x.set(z, i * dims);
    const ids = t.index.search(z, t.layout.tokens).ids;
    q.set(lookupCodes(t.codebook, ids, t.layout.tokens), i * dims);
  }
  return { count, x, q };
}

/** Normalised C-H-W latents through a rectifier (which computes channels-last). */
export function rectifyChw(
  t: Tokenizer,
  r: Rectifier,
  latents: Float32Array,
  count: number,
): Float32Array {
  const { channels: c, height: h, width: w } = t.manifest.vae.latentShape;
  return tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor4d(latents, [count, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
    return tf.transpose(rectify(r, nhwc), [0, 3, 1, 2]).dataSync() as Float32Array;
  });
}
