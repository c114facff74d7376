/**
 * Images → token ids → images with a loaded tokenizer, for a whole array of images at once (an
 * evaluation: scripts/train-default-tokenizer.ts and its test). The encode and reconstruct tasks
 * run the same steps item by item through the Batcher.
 */
import { lookupCodes, normalize } from "@revq/shared";
import { decodeQuantized } from "./device-ops.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** `count` images (count·H·W·3 in [-1, 1]) → their token ids (count·T). */
export async function tokenize(
  tokenizer: Tokenizer,
  images: Float32Array,
  count: number,
): Promise<Uint32Array> {
  const { tokens } = tokenizer.layout;
  const latents = await tokenizer.vae.encode(images, count);
  const ids = new Uint32Array(count * tokens);
  const dims = latents.length / count;
  for (let i = 0; i < count; i++) {
    const z = normalize(latents.subarray(i * dims, (i + 1) * dims), tokenizer.mean, tokenizer.std);
    ids.set(tokenizer.index.search(z, tokens).ids, i * tokens);
  }
  return ids;
}

/**
 * `count` images' token ids → images (count·H·W·3): codebook, rectifier, de-normalisation, VAE
 * decoder. Without the rectifier: `detokenize({ ...tokenizer, rectifier: null }, ...)`.
 */
export function detokenize(
  tokenizer: Tokenizer,
  ids: Uint32Array,
  count: number,
): Promise<Float32Array> {
  const quantized = lookupCodes(tokenizer.codebook, ids, tokenizer.layout.tokens);
  return decodeQuantized(tokenizer, quantized, count);
}
