import type { QuantLayout } from "./layout.ts";

/** G codebooks of K codes of D values: data is (G, K, D) row-major. */
export type Codebook = {
  groups: number;
  codes: number;
  dim: number;
  data: Float32Array;
};

export function createCodebook(groups: number, codes: number, dim: number, data?: Float32Array) {
  const size = groups * codes * dim;
  if (data && data.length !== size) {
    throw new RangeError(
      `codebook (${groups}, ${codes}, ${dim}) needs ${size} values, got ${data.length}`,
    );
  }
  return { groups, codes, dim, data: data ?? new Float32Array(size) } satisfies Codebook;
}

/** Checks that a codebook serves a layout: same groups and code dimension. */
export function assertCodebookFits(codebook: Codebook, layout: QuantLayout): void {
  if (codebook.groups !== layout.groups || codebook.dim !== layout.codeDim) {
    throw new RangeError(
      `codebook has ${codebook.groups} groups of dim ${codebook.dim}, ` +
        `layout needs ${layout.groups} groups of dim ${layout.codeDim}`,
    );
  }
}

/**
 * Token ids (B, T) → quantized tokens (B, T, D): a pure gather, exact.
 * This is the cheap half of decoding that the edge can run.
 */
export function lookupCodes(
  codebook: Codebook,
  ids: ArrayLike<number>,
  tokens: number,
): Float32Array {
  const { groups, codes, dim, data } = codebook;
  if (ids.length % tokens !== 0) {
    throw new RangeError(`${ids.length} ids are not a whole number of ${tokens}-token records`);
  }
  const out = new Float32Array(ids.length * dim); // (B, T, D)
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < codes))
      throw new RangeError(`token ${i}: id ${id} is not in [0, ${codes})`);
    const src = ((i % tokens) % groups) * codes * dim + id * dim;
    out.set(data.subarray(src, src + dim), i * dim);
  }
  return out;
}

/** Adds one hit per token to counts (G, K). */
export function countUsage(
  counts: Float64Array,
  codebook: Codebook,
  ids: ArrayLike<number>,
  tokens: number,
): void {
  const { groups, codes } = codebook;
  for (let i = 0; i < ids.length; i++) {
    counts[((i % tokens) % groups) * codes + ids[i]] += 1;
  }
}

/** Per group, the fraction of codes with at least one hit; (G,). */
export function usagePerGroup(counts: Float64Array, codebook: Codebook): Float64Array {
  const { groups, codes } = codebook;
  const usage = new Float64Array(groups);
  for (let g = 0; g < groups; g++) {
    let used = 0;
    for (let k = 0; k < codes; k++) if (counts[g * codes + k] > 0.5) used++;
    usage[g] = used / codes;
  }
  return usage;
}
