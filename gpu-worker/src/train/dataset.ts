/**
 * Training latents on the host: the VAE's raw latents (N, C·H·W), row-major in token order, held
 * as shards (one per extraction chunk, so no single array must hold a whole dataset), with the
 * per-dimension statistics they are normalised by, and the held-out split.
 */

import {
  batchStats,
  emptyStats,
  mergeStats,
  normalize,
  Rng,
  standardDeviation,
} from "@revq/shared";

export type LatentSet = {
  /** C·H·W values per latent. */
  dims: number;
  count: number;
  /** (n_i, dims) each; Σ n_i = count. */
  shards: Float32Array[];
};

export function latentSet(shards: Float32Array[], dims: number): LatentSet {
  let count = 0;
  for (const [i, shard] of shards.entries()) {
    if (shard.length % dims !== 0) {
      throw new RangeError(
        `latent shard ${i} has ${shard.length} values, not whole latents of ${dims}`,
      );
    }
    count += shard.length / dims;
  }
  return { dims, count, shards };
}

/** Latents `indices` (in the order given), (n, dims). */
export function gatherLatents(set: LatentSet, indices: ArrayLike<number>): Float32Array {
  const { dims } = set;
  const starts: number[] = [];
  let start = 0;
  for (const shard of set.shards) {
    starts.push(start);
    start += shard.length / dims;
  }
  const out = new Float32Array(indices.length * dims);
  for (let i = 0; i < indices.length; i++) {
    const n = indices[i];
    if (!(n >= 0 && n < set.count)) throw new RangeError(`latent ${n} is not in [0, ${set.count})`);
    const s = upperBound(starts, n) - 1;
    const offset = (n - starts[s]) * dims;
    out.set(set.shards[s].subarray(offset, offset + dims), i * dims);
  }
  return out;
}

/** Index of the first element of sorted `values` greater than x. */
function upperBound(values: number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The subset of `set` at `indices`, as one shard. */
export function subset(set: LatentSet, indices: ArrayLike<number>): LatentSet {
  return latentSet([gatherLatents(set, indices)], set.dims);
}

/** Mean and std per dimension (float32, as the tokenizer's stats.safetensors holds them). */
export type Normalizer = { mean: Float32Array; std: Float32Array };

/**
 * Population statistics of the latents at `indices` (all of them when absent), merged chunk by
 * chunk (the same merge the shards of a distributed extraction use), so no copy of the whole set
 * is made. A dimension that never varies would divide by zero: it gets std 1, which maps its one
 * value to 0 all the same.
 */
export function latentStatistics(set: LatentSet, indices?: ArrayLike<number>): Normalizer {
  let stats = emptyStats(set.dims);
  if (indices) {
    for (let start = 0; start < indices.length; start += STATS_CHUNK) {
      const chunk = Array.from(
        { length: Math.min(STATS_CHUNK, indices.length - start) },
        (_, i) => indices[start + i],
      );
      stats = mergeStats(stats, batchStats(gatherLatents(set, chunk), set.dims));
    }
  } else {
    for (const shard of set.shards) stats = mergeStats(stats, batchStats(shard, set.dims));
  }
  const std = Float32Array.from(standardDeviation(stats), (s) => (s > 0 ? s : 1));
  return { mean: Float32Array.from(stats.mean), std };
}

/** Latents per merged chunk when the statistics cover a subset. */
const STATS_CHUNK = 4096;

export function normalizeLatents(latents: Float32Array, n: Normalizer): Float32Array {
  return normalize(latents, n.mean, n.std);
}

/** A uniformly random permutation of 0..n−1 (Fisher–Yates). */
export function shuffledOrder(rng: Rng, n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/**
 * The training/held-out split of n latents: `heldOut` of them, chosen by the seed alone (not by
 * the run's generator), so a resumed run and the CLI's cache agree on it. Both lists ascending.
 */
export function splitHeldOut(
  n: number,
  heldOut: number,
  seed: number,
): { train: Uint32Array; heldOut: Uint32Array } {
  if (!Number.isSafeInteger(heldOut) || heldOut < 0 || heldOut >= n) {
    throw new RangeError(`cannot hold out ${heldOut} of ${n} latents and still train`);
  }
  const order = shuffledOrder(new Rng(seed ^ 0x5eed), n);
  const held = order.slice(0, heldOut).sort();
  const train = order.slice(heldOut).sort();
  return { train, heldOut: held };
}
