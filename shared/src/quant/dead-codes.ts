import type { Codebook } from "./codebook.ts";
import type { Rng } from "./rng.ts";

export type DeadCodeResetOptions = {
  /**
   * At most this fraction of K is reset per group (at least one code, as the reference does);
   * 0 turns the reset off (for a run whose codebook stays as it is). Paper: 0.2.
   */
  ratio: number;
  /** Std of the Gaussian noise added to each copied code. Paper: 0.1. */
  noise: number;
  rng: Rng;
};

/**
 * Dead-code reset (DESIGN.md step 7), in place. Per group: r = min(max(⌊ratio·K⌋, 1), number of
 * codes with zero hits), or 0 when ratio is 0; with codes ranked by hits (descending), the code ranked K−r+j takes the
 * value of the code ranked j plus noise. Ties in the ranking go to the lower index, so the result
 * is deterministic. Returns r per group; counts (G, K) are left for the caller to reset.
 */
export function resetDeadCodes(
  codebook: Codebook,
  counts: Float64Array,
  { ratio, noise, rng }: DeadCodeResetOptions,
): Uint32Array {
  const { groups, codes, dim, data } = codebook;
  const resetSize = ratio === 0 ? 0 : Math.max(Math.floor(ratio * codes), 1);
  const replaced = new Uint32Array(groups);
  const ranked = new Uint32Array(codes);
  for (let g = 0; g < groups; g++) {
    const hits = counts.subarray(g * codes, (g + 1) * codes);
    let dead = 0;
    for (let k = 0; k < codes; k++) if (hits[k] < 0.5) dead++;
    const r = Math.min(resetSize, dead);
    replaced[g] = r;
    if (r === 0) continue;
    for (let k = 0; k < codes; k++) ranked[k] = k;
    ranked.sort((a, b) => hits[b] - hits[a] || a - b);
    const base = g * codes * dim;
    for (let j = 0; j < r; j++) {
      const src = base + ranked[j] * dim;
      const dst = base + ranked[codes - r + j] * dim;
      for (let d = 0; d < dim; d++) data[dst + d] = data[src + d] + noise * rng.nextNormal();
    }
  }
  return replaced;
}
