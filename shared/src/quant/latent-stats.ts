/**
 * Streaming, mergeable per-dimension mean and variance of latents (DESIGN.md, "Normalisation").
 *
 * Each shard of a dataset yields its own LatentStats; merging is exact (Chan et al.'s pooled
 * moments), so the order and split of batches and workers does not change the result beyond
 * float64 rounding. Variance is the population variance (divide by n), as in the reference.
 */
export type LatentStats = {
  count: number;
  /** (N,) running mean per latent dimension. */
  mean: Float64Array;
  /** (N,) sum of squared deviations from the mean per dimension. */
  m2: Float64Array;
};

export function emptyStats(dims: number): LatentStats {
  return { count: 0, mean: new Float64Array(dims), m2: new Float64Array(dims) };
}

/** Statistics of one batch: samples is (B, N) flat. */
export function batchStats(samples: Float32Array, dims: number): LatentStats {
  const count = samples.length / dims;
  if (!Number.isInteger(count)) {
    throw new RangeError(`${samples.length} values are not a whole number of ${dims}-dim samples`);
  }
  const stats = emptyStats(dims);
  stats.count = count;
  for (let b = 0; b < count; b++) {
    for (let j = 0; j < dims; j++) stats.mean[j] += samples[b * dims + j];
  }
  for (let j = 0; j < dims; j++) stats.mean[j] /= count || 1;
  for (let b = 0; b < count; b++) {
    for (let j = 0; j < dims; j++) {
      const d = samples[b * dims + j] - stats.mean[j];
      stats.m2[j] += d * d;
    }
  }
  return stats;
}

/** a ⊕ b: the statistics of both sample sets together. */
export function mergeStats(a: LatentStats, b: LatentStats): LatentStats {
  if (a.mean.length !== b.mean.length) {
    throw new RangeError(`cannot merge stats of ${a.mean.length} and ${b.mean.length} dims`);
  }
  if (a.count === 0) return cloneStats(b);
  if (b.count === 0) return cloneStats(a);
  const count = a.count + b.count;
  const merged = emptyStats(a.mean.length);
  merged.count = count;
  const wb = b.count / count;
  for (let j = 0; j < a.mean.length; j++) {
    const delta = b.mean[j] - a.mean[j];
    merged.mean[j] = a.mean[j] + delta * wb;
    merged.m2[j] = a.m2[j] + b.m2[j] + delta * delta * a.count * wb;
  }
  return merged;
}

export function variance(stats: LatentStats): Float64Array {
  return stats.m2.map((m2) => m2 / stats.count);
}

/** The std the normaliser divides by: sqrt of the population variance. */
export function standardDeviation(stats: LatentStats): Float64Array {
  return stats.m2.map((m2) => Math.sqrt(m2 / stats.count));
}

function cloneStats(s: LatentStats): LatentStats {
  return { count: s.count, mean: s.mean.slice(), m2: s.m2.slice() };
}
