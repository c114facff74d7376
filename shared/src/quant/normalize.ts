/**
 * Per-dimension standardisation of latents: (x − mean) / std, and back. latents is (B, N) flat;
 * mean and std are (N,). Results are float32, as the rectifier and VAE take them.
 */
export function normalize(
  latents: Float32Array,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
): Float32Array {
  const dims = checkDims(latents, mean, std);
  const out = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) {
    const j = i % dims;
    out[i] = (latents[i] - mean[j]) / std[j];
  }
  return out;
}

export function denormalize(
  normalized: Float32Array,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
): Float32Array {
  const dims = checkDims(normalized, mean, std);
  const out = new Float32Array(normalized.length);
  for (let i = 0; i < normalized.length; i++) {
    const j = i % dims;
    out[i] = normalized[i] * std[j] + mean[j];
  }
  return out;
}

function checkDims(x: Float32Array, mean: ArrayLike<number>, std: ArrayLike<number>): number {
  const dims = mean.length;
  if (std.length !== dims || dims === 0 || x.length % dims !== 0) {
    throw new RangeError(
      `latents of ${x.length} values do not match statistics of ${dims} means and ${std.length} stds`,
    );
  }
  return dims;
}
