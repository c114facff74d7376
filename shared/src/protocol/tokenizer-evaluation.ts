/**
 * A trained tokenizer's evaluation on its run's held-out set (docs/training.md, "Evaluation"),
 * and the thresholds a train job may set on it (`parameters.require`).
 *
 * The worker makes the evaluation once, from the last epoch's validation: that validation runs
 * after the last dead-code reset, on the very codebook and rectifier that are exported, and it is
 * kept in the run's checkpoint, so a task that exports again after a lost lease writes the same
 * figures (and the same manifest hash). The manifest keeps it (`evaluation`); the tokenizer's
 * view, its train job's view and the `training.*` webhooks show it.
 */
import * as z from "zod";
import { bitsForCodes } from "../format/token-stream.ts";

const Fraction = z.number().min(0).max(1);

/** Mean over the held-out images decoded. */
const Quality = z.strictObject({
  /** dB; absent when every image is reproduced exactly (an infinite PSNR, which JSON cannot carry). */
  psnr: z.number().optional(),
  ssim: z.number().min(-1).max(1),
});

export const TokenizerEvaluation = z
  .strictObject({
    /** What was evaluated: held-out latents, and how many of their images were decoded. */
    heldOut: z.strictObject({ latents: z.int().min(1), images: z.int().min(0) }),
    /** Normalised latent MSE against the originals: the quantized codes, then the rectifier's output. */
    latentMse: z.strictObject({ quantized: z.number().min(0), rectified: z.number().min(0) }),
    /** Absent when no image was decoded (`heldOut.images` 0). */
    images: z
      .strictObject({
        /** Decoded from the tokens (codes, rectifier, VAE decoder) against the original images. */
        tokens: Quality,
        /** The VAE's own reconstruction against the originals: the ceiling a tokenizer can reach. */
        vae: Quality,
        /** Decoded from the tokens against the VAE's own reconstruction. */
        tokensVsVae: Quality,
      })
      .optional(),
    /**
     * Fractions of each group's codes used by the last epoch's training pass: the least-used
     * group's and the mean. (The held-out set is too small to measure usage on: a few hundred
     * images cannot visit every code of a large codebook.)
     */
    usage: z.strictObject({ min: Fraction, mean: Fraction }),
    /** tokens × ceil(log2 codesPerGroup). */
    bitsPerImage: z.int().min(1),
  })
  .meta({
    id: "TokenizerEvaluation",
    description:
      "The tokenizer's figures on its training run's held-out set (docs/training.md, Evaluation).",
  });
export type TokenizerEvaluation = z.infer<typeof TokenizerEvaluation>;

/** Bits of one image's tokens: T · ceil(log2 K). */
export function bitsPerImage(tokens: number, codesPerGroup: number): number {
  return tokens * bitsForCodes(codesPerGroup);
}

/**
 * How far the PSNR of images decoded from tokens falls below the VAE's own (dB), if both are
 * known; an exact reconstruction counts as infinite PSNR.
 */
export function psnrGapDb(evaluation: TokenizerEvaluation): number | undefined {
  const { images } = evaluation;
  if (!images) return undefined;
  const vae = images.vae.psnr ?? Number.POSITIVE_INFINITY;
  const tokens = images.tokens.psnr ?? Number.POSITIVE_INFINITY;
  return vae === tokens ? 0 : vae - tokens;
}

/** A train job's thresholds: a tokenizer that misses any of them is not registered. */
export const EvaluationRequirements = z
  .strictObject({
    /** The most, in dB, that images decoded from tokens may fall below the VAE's own PSNR. */
    maxPsnrGapDb: z.number().min(0).max(100).optional(),
    /** The least fraction of its codes that every group must have used in the last epoch. */
    minUsage: Fraction.optional(),
    /** true: the rectifier must bring held-out latent MSE below the quantized codes'. */
    rectifierMustHelp: z.boolean().optional(),
  })
  .meta({
    description:
      "Thresholds on the held-out evaluation; a tokenizer that misses one is not registered and the job fails with evaluation-below-threshold.",
  });
export type EvaluationRequirements = z.infer<typeof EvaluationRequirements>;

/**
 * Each threshold the evaluation misses, as a sentence naming the figure; empty when it meets
 * them all. A threshold that could not be measured (nothing held out, no image decoded) is missed:
 * a tokenizer is only ever let through on figures.
 */
export function missedRequirements(
  evaluation: TokenizerEvaluation | undefined,
  require: EvaluationRequirements = {},
): string[] {
  const { maxPsnrGapDb, minUsage, rectifierMustHelp } = require;
  const asked = maxPsnrGapDb !== undefined || minUsage !== undefined || rectifierMustHelp;
  if (!asked) return [];
  if (!evaluation) return ["nothing was held out to evaluate the tokenizer on"];
  const missed: string[] = [];
  if (maxPsnrGapDb !== undefined) {
    const gap = psnrGapDb(evaluation);
    if (gap === undefined) missed.push("PSNR gap to the VAE: not measured (no image decoded)");
    else if (gap > maxPsnrGapDb)
      missed.push(`PSNR gap to the VAE ${gap.toFixed(2)} dB, above the ${maxPsnrGapDb} dB allowed`);
  }
  if (minUsage !== undefined && evaluation.usage.min < minUsage) {
    missed.push(
      `least group's usage ${evaluation.usage.min.toFixed(3)}, below the ${minUsage} required`,
    );
  }
  const { quantized, rectified } = evaluation.latentMse;
  if (rectifierMustHelp && !(rectified < quantized)) {
    missed.push(
      `the rectifier did not lower held-out latent MSE (${quantized.toFixed(4)} quantized → ${rectified.toFixed(4)} rectified)`,
    );
  }
  return missed;
}
