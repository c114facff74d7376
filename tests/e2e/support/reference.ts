/**
 * What the worker must produce, computed in the test process with the same tokenizer read from
 * the same bucket: tokens by the exhaustive nearest-code search, and the VAE's own
 * reconstructions to compare reconstructed images with.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nearestCodesExhaustive, normalize, type TokenizerRef } from "@revq/shared";
import sharp from "sharp";
import { TokenizerCache } from "../../../gpu-worker/src/cache.ts";
import { decodeImage } from "../../../gpu-worker/src/images/codec.ts";
import { createLogger } from "../../../gpu-worker/src/log.ts";
import { type Tokenizer, TokenizerStore } from "../../../gpu-worker/src/pipeline/tokenizer.ts";
import type { LocalEdge } from "./edge.ts";
import { s3DoorBucket } from "./s3-door.ts";
import { RESOLUTION } from "./tiny-tokenizer.ts";

export function tokenizerRef(hash: string, id: string): TokenizerRef {
  return {
    id,
    manifestHash: hash,
    manifestKey: `tokenizers/${hash}/manifest.json`,
    filesPrefix: `tokenizers/${hash}/files/`,
  };
}

export async function withTokenizer<T>(
  edge: LocalEdge,
  ref: TokenizerRef,
  use: (t: Tokenizer) => Promise<T>,
): Promise<T> {
  const log = createLogger({ format: "json", write: () => undefined });
  const bucket = s3DoorBucket(edge.s3);
  const dir = mkdtempSync(join(tmpdir(), "revq-e2e-ref-"));
  try {
    const cache = new TokenizerCache(dir, log);
    const modelsDir = join(dir, "models");
    return await new TokenizerStore(cache, log, { modelsDir }).with(ref, { bucket }, use);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function expectedTokens(t: Tokenizer, images: Uint8Array[]): Promise<number[]> {
  const ids: number[] = [];
  for (const bytes of images) {
    const latent = await t.vae.encode(await decodeImage(bytes, RESOLUTION), 1);
    const normalized = normalize(latent, t.mean, t.std);
    ids.push(...nearestCodesExhaustive(t.codebook, normalized, t.layout.tokens).ids);
  }
  return ids;
}

/** The VAE's own reconstruction of an image, as 8-bit pixels. */
export async function vaeReconstruction(t: Tokenizer, image: Uint8Array): Promise<Uint8Array> {
  const own = await t.vae.decode(await t.vae.encode(await decodeImage(image, RESOLUTION), 1), 1);
  return Uint8Array.from(own, (v) => Math.round(Math.min(1, Math.max(-1, v)) * 127.5 + 127.5));
}

export async function pixelsOf(png: Uint8Array): Promise<Uint8Array> {
  const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

export function psnr(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return 10 * Math.log10((255 * 255) / (sum / a.length));
}
