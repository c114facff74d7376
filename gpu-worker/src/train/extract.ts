/**
 * Latent extraction (DESIGN.md step 6: the VAE is never run during training): every image is
 * encoded once, in shards of consecutive images kept in a store, so an interrupted extraction
 * resumes at the first missing shard and a later training on the same (dataset, VAE) finds them
 * all. Each shard is a safetensors file holding `latents` (n, C·H·W) F32; the statistics are
 * computed per shard and merged (dataset.ts), never from one array of the whole set.
 */

import {
  type LatentShape,
  latentSize,
  parseSafetensors,
  readTensor,
  writeSafetensors,
} from "@revq/shared";
import type { Vae } from "../pipeline/vae.ts";
import { type LatentSet, latentSet } from "./dataset.ts";
import type { BlobStore } from "./store.ts";

export const SHARD_FORMAT = "revq.latent-shard/v1";

/** Images of a dataset, fitted to the VAE's input resolution on demand. */
export type ImageSource = {
  count: number;
  /** Image `index` as H·W·3 values in [-1, 1]. */
  load(index: number): Promise<Float32Array>;
};

export type ExtractOptions = {
  /** Images per shard (the unit of reuse and resumption). */
  shardSize: number;
  /** Images per VAE call. */
  batchSize: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, reused: boolean) => void;
};

export function shardName(index: number): string {
  return `shard-${String(index).padStart(6, "0")}.safetensors`;
}

export async function extractLatents(
  images: ImageSource,
  vae: Vae,
  store: BlobStore,
  options: ExtractOptions,
): Promise<LatentSet> {
  const dims = latentSize(vae.latentShape);
  const shards: Float32Array[] = [];
  for (let first = 0; first < images.count; first += options.shardSize) {
    options.signal?.throwIfAborted();
    const count = Math.min(options.shardSize, images.count - first);
    const name = shardName(first / options.shardSize);
    let latents = readShard(await store.read(name), count, vae.latentShape);
    const reused = latents !== null;
    if (!latents) {
      latents = await encodeRange(images, vae, first, count, options);
      await store.write(name, writeShard(latents, first, vae.latentShape));
    }
    shards.push(latents);
    options.onProgress?.(first + count, images.count, reused);
  }
  return latentSet(shards, dims);
}

async function encodeRange(
  images: ImageSource,
  vae: Vae,
  first: number,
  count: number,
  { batchSize, signal }: ExtractOptions,
): Promise<Float32Array> {
  const dims = latentSize(vae.latentShape);
  const { height, width } = vae.inputResolution;
  const out = new Float32Array(count * dims);
  for (let start = 0; start < count; start += batchSize) {
    signal?.throwIfAborted();
    const n = Math.min(batchSize, count - start);
    const pixels = new Float32Array(n * height * width * 3);
    const loaded = await Promise.all(
      Array.from({ length: n }, (_, i) => images.load(first + start + i)),
    );
    for (const [i, image] of loaded.entries()) pixels.set(image, i * height * width * 3);
    out.set(await vae.encode(pixels, n), start * dims);
  }
  return out;
}

function writeShard(latents: Float32Array, first: number, shape: LatentShape): Uint8Array {
  const dims = latentSize(shape);
  return writeSafetensors(
    { latents: { dtype: "F32", shape: [latents.length / dims, dims], data: latents } },
    {
      format: SHARD_FORMAT,
      first: String(first),
      latentShape: `${shape.channels},${shape.height},${shape.width}`,
    },
  );
}

/** A stored shard's latents if it is whole and of this shape; null means: extract it again. */
export function readShard(
  bytes: Uint8Array | null,
  count: number,
  shape: LatentShape,
): Float32Array | null {
  if (!bytes) return null;
  try {
    const file = parseSafetensors(bytes);
    const info = file.tensors.get("latents");
    const fits =
      file.metadata.format === SHARD_FORMAT &&
      file.metadata.latentShape === `${shape.channels},${shape.height},${shape.width}` &&
      info?.dtype === "F32" &&
      info.shape.join() === `${count},${latentSize(shape)}`;
    return fits ? (readTensor(file, "latents").data as Float32Array) : null;
  } catch {
    return null; // damaged: extracting it again is the repair
  }
}
