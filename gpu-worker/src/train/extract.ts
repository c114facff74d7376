/**
 * Latent extraction (DESIGN.md step 6: the VAE is never run during training): every image is
 * encoded once, in shards of consecutive images kept in a store. Shard i holds images
 * [i·shardSize, min((i+1)·shardSize, count)) under latentShardName(i), so an interrupted
 * extraction does only the missing shards, several workers can fill one set between them
 * (tasks/extract.ts), and every later training on the same (dataset, VAE) finds them all.
 *
 * A shard is a safetensors file holding `latents` (n, C·H·W) F32; its metadata records the first
 * image's index, the latent shape and the dataset's identity, and a shard that does not match
 * all three is extracted again rather than trusted. The statistics are computed per shard and
 * merged (dataset.ts), never from one array of the whole set.
 */

import {
  type LatentShape,
  latentShardName,
  latentSize,
  parseSafetensors,
  readTensor,
  writeSafetensors,
} from "@revq/shared";
import type { Vae } from "../models/vae.ts";
import { overlapped } from "../pipeline/overlap.ts";
import { type LatentSet, latentSet } from "./dataset.ts";
import type { BlobStore } from "./store.ts";

export const SHARD_FORMAT = "revq.latent-shard/v1";

/** Images of a dataset, fitted to the VAE's input resolution on demand. */
export type ImageSource = {
  count: number;
  /** Image `index` as H·W·3 values in [-1, 1]. */
  load(index: number): Promise<Float32Array>;
};

export type ShardOptions = {
  /** Images per shard (the unit of reuse and resumption). */
  shardSize: number;
  /** Images per VAE call. */
  batchSize: number;
  /**
   * What the latents are of (the dataset under its VAE), recorded in every shard written and
   * required of every shard read. Left out where the store itself is keyed by it (a local cache
   * folder named after it): then it is neither recorded nor checked.
   */
  identity?: string;
  signal?: AbortSignal;
  /** After each VAE call: images of this shard encoded so far. */
  onEncoded?: (encoded: number) => void;
};

export type ExtractOptions = ShardOptions & {
  /**
   * Walk the shards from the last to the first: a train task does, so that it meets the extract
   * tasks of its dataset (leased from the first shard on) in the middle instead of redoing theirs.
   */
  fromLast?: boolean;
  /** After each shard: images done, of `total`, and whether the shard was already stored. */
  onProgress?: (done: number, total: number, reused: boolean) => void;
};

/** What a stored shard must be to be used as it is. */
export type ShardExpectation = {
  first: number;
  count: number;
  shape: LatentShape;
  identity?: string;
};

/** Every shard of `images`, each read back when stored whole, else encoded and written. */
export async function extractLatents(
  images: ImageSource,
  vae: Vae,
  store: BlobStore,
  options: ExtractOptions,
): Promise<LatentSet> {
  const dims = latentSize(vae.latentShape);
  const count = Math.ceil(images.count / options.shardSize);
  const shards = new Array<Float32Array>(count);
  let done = 0;
  for (let step = 0; step < count; step++) {
    const index = options.fromLast ? count - 1 - step : step;
    const { latents, reused } = await ensureShard(images, vae, store, index, options);
    shards[index] = latents;
    done += latents.length / dims;
    options.onProgress?.(done, images.count, reused);
  }
  return latentSet(shards, dims);
}

/** Shard `index`'s latents (n, C·H·W): the stored shard if it is whole, else encoded and written. */
export async function ensureShard(
  images: ImageSource,
  vae: Vae,
  store: BlobStore,
  index: number,
  options: ShardOptions,
): Promise<{ latents: Float32Array; reused: boolean }> {
  options.signal?.throwIfAborted();
  const first = index * options.shardSize;
  const expected: ShardExpectation = {
    first,
    count: Math.min(options.shardSize, images.count - first),
    shape: vae.latentShape,
    identity: options.identity,
  };
  if (!(expected.count > 0))
    throw new RangeError(`shard ${index} starts past the last of ${images.count} images`);
  const name = latentShardName(index);
  const stored = readShard(await store.read(name), expected);
  if (stored) return { latents: stored, reused: true };
  const latents = await encodeRange(images, vae, first, expected.count, options);
  await store.write(name, writeShard(latents, expected));
  return { latents, reused: false };
}

/**
 * Images [first, first + count) through the VAE in batches → (count, C·H·W), overlapped: the
 * next batches load while the device encodes (pipeline/overlap.ts).
 */
async function encodeRange(
  images: ImageSource,
  vae: Vae,
  first: number,
  count: number,
  { batchSize, signal, onEncoded }: ShardOptions,
): Promise<Float32Array> {
  const dims = latentSize(vae.latentShape);
  const { height, width } = vae.inputResolution;
  const out = new Float32Array(count * dims);
  const sizeOf = (n: number) => Math.min(batchSize, count - n * batchSize);
  await overlapped({
    chunks: Math.ceil(count / batchSize),
    signal,
    load: async (n) => {
      const start = first + n * batchSize;
      const loaded = await Promise.all(
        Array.from({ length: sizeOf(n) }, (_, i) => images.load(start + i)),
      );
      const pixels = new Float32Array(loaded.length * height * width * 3); // (n, H, W, 3)
      for (const [i, image] of loaded.entries()) pixels.set(image, i * height * width * 3);
      return pixels;
    },
    compute: (pixels, n) => vae.encode(pixels, sizeOf(n)),
    consume: (latents, n) => {
      out.set(latents, n * batchSize * dims);
      onEncoded?.(n * batchSize + sizeOf(n));
    },
  });
  return out;
}

const shapeText = (s: LatentShape) => `${s.channels},${s.height},${s.width}`;

function writeShard(latents: Float32Array, expected: ShardExpectation): Uint8Array {
  const dims = latentSize(expected.shape);
  return writeSafetensors(
    { latents: { dtype: "F32", shape: [expected.count, dims], data: latents } },
    {
      format: SHARD_FORMAT,
      first: String(expected.first),
      latentShape: shapeText(expected.shape),
      ...(expected.identity === undefined ? {} : { identity: expected.identity }),
    },
  );
}

/** A stored shard's latents if it is whole and what is expected; null means: extract it again. */
export function readShard(
  bytes: Uint8Array | null,
  expected: ShardExpectation,
): Float32Array | null {
  if (!bytes) return null;
  try {
    const file = parseSafetensors(bytes);
    const { metadata } = file;
    const info = file.tensors.get("latents");
    const fits =
      metadata.format === SHARD_FORMAT &&
      metadata.first === String(expected.first) &&
      metadata.latentShape === shapeText(expected.shape) &&
      (expected.identity === undefined || metadata.identity === expected.identity) &&
      info?.dtype === "F32" &&
      info.shape.join() === `${expected.count},${latentSize(expected.shape)}`;
    return fits ? (readTensor(file, "latents").data as Float32Array) : null;
  } catch {
    return null; // damaged: extracting it again is the repair
  }
}
