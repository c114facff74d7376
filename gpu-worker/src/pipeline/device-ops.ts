/**
 * The device halves of encode and reconstruct, on a batch of items (as the Batcher runs them):
 * items in, items out, one model call per batch. No Node APIs: the console decodes with these
 * too (the package export `@revq/gpu-worker/device-ops`).
 */
import { denormalize } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { readAndDispose } from "../models/channels-last-vae.ts";
import { rectify } from "../models/rectifier.ts";
import type { Vae } from "../models/vae.ts";
import type { DecodingModels } from "./tokenizer-models.ts";

/** Images (H·W·3 each, in [-1, 1]) → latents (C·H·W each, token order). */
export async function encodeLatents(vae: Vae, images: Float32Array[]): Promise<Float32Array[]> {
  const latents = await vae.encode(concat(images), images.length);
  return split(latents, images.length);
}

/** A decoded item: its image (H·W·3, in [-1, 1]) and the VAE latent it came from (C·H·W). */
export type DecodedItem = { image: Float32Array; latent: Float32Array };

/**
 * Quantized normalised latents (C·H·W each) → images: rectifier, de-normalisation with the
 * tokenizer's statistics, VAE decoder; each with its VAE latent, which costs nothing more.
 */
export async function decodeImages(
  tokenizer: DecodingModels,
  quantized: Float32Array[],
): Promise<DecodedItem[]> {
  const count = quantized.length;
  const latents = await vaeLatents(tokenizer, concat(quantized), count);
  const images = split(await tokenizer.vae.decode(latents, count), count);
  const each = split(latents, count);
  return images.map((image, i) => ({ image, latent: each[i] }));
}

/** The same on one array: `count` quantized latents (count·C·H·W) → images (count·H·W·3). */
export async function decodeQuantized(
  tokenizer: DecodingModels,
  quantized: Float32Array,
  count: number,
): Promise<Float32Array> {
  return tokenizer.vae.decode(await vaeLatents(tokenizer, quantized, count), count);
}

/** Quantized normalised latents (count·C·H·W) → what the VAE decodes: rectified, de-normalised. */
async function vaeLatents(
  tokenizer: DecodingModels,
  quantized: Float32Array,
  count: number,
): Promise<Float32Array> {
  const rectified = tokenizer.rectifier
    ? await rectifyLatents(tokenizer, quantized, count)
    : quantized;
  return denormalize(rectified, tokenizer.mean, tokenizer.std);
}

/** The rectifier computes channels-last: C-H-W in, C-H-W out. */
async function rectifyLatents(
  tokenizer: DecodingModels,
  latents: Float32Array,
  count: number,
): Promise<Float32Array> {
  const { channels: c, height: h, width: w } = tokenizer.manifest.vae.latentShape;
  const rectifier = tokenizer.rectifier;
  if (!rectifier) return latents;
  const out = tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor4d(latents, [count, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
    return tf.transpose(rectify(rectifier, nhwc), [0, 3, 1, 2]);
  });
  return readAndDispose(out, latents.length);
}

function concat(items: Float32Array[]): Float32Array {
  const each = items[0].length;
  const out = new Float32Array(items.length * each);
  items.forEach((item, i) => {
    if (item.length !== each) throw new RangeError("batch items differ in size");
    out.set(item, i * each);
  });
  return out;
}

function split(data: Float32Array, count: number): Float32Array[] {
  const each = data.length / count;
  return Array.from({ length: count }, (_, i) => data.subarray(i * each, (i + 1) * each));
}
