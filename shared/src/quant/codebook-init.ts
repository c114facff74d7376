import { type Codebook, createCodebook } from "./codebook.ts";
import type { QuantLayout } from "./layout.ts";
import type { Rng } from "./rng.ts";

/**
 * For each group g and code k, which training latent initialises it: (G, K) indices into the
 * bank, drawn uniformly with replacement (as the reference does, so duplicate codes can occur).
 */
export function sampleCodebookSources(
  rng: Rng,
  layout: QuantLayout,
  codes: number,
  bankSize: number,
): Uint32Array {
  if (bankSize < 1) throw new RangeError("codebook initialisation needs at least one latent");
  const sources = new Uint32Array(layout.groups * codes);
  for (let i = 0; i < sources.length; i++) sources[i] = rng.nextInt(bankSize);
  return sources;
}

/**
 * Codebook from training latents (DESIGN.md step 6): code k of group g is token g of bank sample
 * sources[g, k]. Like the reference, a group is initialised from its first token position only.
 * bank: (N, T, D) flat normalised latents; sources: (G, K).
 */
export function initCodebookFromLatents(
  bank: Float32Array,
  layout: QuantLayout,
  sources: Uint32Array,
  codes: number,
): Codebook {
  const { tokens, groups, codeDim } = layout;
  const bankSize = bank.length / (tokens * codeDim);
  if (!Number.isInteger(bankSize) || sources.length !== groups * codes) {
    throw new RangeError(
      `bank of ${bank.length} values or ${sources.length} sources do not fit ` +
        `${groups} groups × ${codes} codes of ${tokens} tokens × ${codeDim}`,
    );
  }
  const codebook = createCodebook(groups, codes, codeDim);
  for (let g = 0; g < groups; g++) {
    for (let k = 0; k < codes; k++) {
      const n = sources[g * codes + k];
      if (n >= bankSize) throw new RangeError(`source ${n} is outside the bank of ${bankSize}`);
      const src = (n * tokens + g) * codeDim;
      codebook.data.set(bank.subarray(src, src + codeDim), (g * codes + k) * codeDim);
    }
  }
  return codebook;
}
