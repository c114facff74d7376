/**
 * A train job's parameters as a client sends them (docs/training.md): every field optional,
 * nothing unknown. The edge refuses a job whose parameters do not pass, and the GPU worker reads
 * them with the same schema; the worker alone turns them into a run (gpu-worker/src/train/
 * config.ts), where the presets' sizes and what depends on the VAE's latents are checked.
 */
import * as z from "zod";
import { EvaluationRequirements } from "./tokenizer-evaluation.ts";

/** The sized presets of gpu-worker/src/train/config.ts, by name. */
export const TRAIN_PRESET_NAMES = ["512x16384", "256x65536", "256x262144", "small"] as const;
export type TrainPresetName = (typeof TRAIN_PRESET_NAMES)[number];

/** How a batch's codes are found: the exact search on the host, or distances on the device. */
export const ASSIGNMENTS = ["exact", "device"] as const;
export type Assignment = (typeof ASSIGNMENTS)[number];

/**
 * How the rectifier's squared error is weighted across latent dimensions: `uniform` is ReVQ's
 * mse(z, rectifier(q)) on the normalised latent; `latent-variance` weights dimension i by
 * std_i² / mean(std²), the error in the VAE's own (de-normalised) units rescaled to the same
 * mean weight, which follows the VAE decoder's per-channel sensitivity (docs/default-tokenizer.md).
 */
export const RECTIFIER_LOSS_WEIGHTINGS = ["uniform", "latent-variance"] as const;
export type RectifierLossWeighting = (typeof RECTIFIER_LOSS_WEIGHTINGS)[number];

/**
 * What the rectifier's squared error is measured on: `latent` is ReVQ's, the latent itself (as
 * weighted by `rectifierLossWeighting`); `decoder` is the frozen VAE decoder's images of the
 * rectified and of the true latent, back-propagated through the decoder (docs/training.md): the
 * error a user sees, at the cost of the decoder's forward and backward in every step; `image` is
 * the decoder's image of the rectified latent against the dataset's image itself, so the rectifier
 * may also undo some of the VAE's own error.
 */
export const RECTIFIER_LOSSES = ["latent", "decoder", "image"] as const;
export type RectifierLoss = (typeof RECTIFIER_LOSSES)[number];

const positiveInt = z.int().min(1);
const rate = z.number().positive().max(1);

/** Each field over the preset's rectifier. */
const RectifierParams = z.strictObject({
  channels: positiveInt.max(8192).optional(),
  blocks: positiveInt.max(64).optional(),
  headDim: positiveInt.max(8192).optional(),
  multiscales: z.array(positiveInt.max(31)).max(8).optional(),
  /** true: a residual rectifier, q + stage(q), starting at the identity (docs/training.md). */
  residual: z.boolean().optional(),
});

/** `name` and `description` are the new tokenizer's, not part of the run. */
export const TrainParameters = z
  .strictObject({
    name: z.string().min(1).max(200).optional(),
    description: z.string().max(10_000).optional(),
    preset: z.enum(TRAIN_PRESET_NAMES).optional(),
    tokens: positiveInt.optional(),
    groups: positiveInt.optional(),
    codes: z
      .int()
      .min(2)
      .max(1 << 24)
      .optional(),
    rectifier: RectifierParams.optional(),
    epochs: positiveInt.max(100_000).optional(),
    batchSize: positiveInt.max(1 << 16).optional(),
    learningRates: z
      .strictObject({
        /** 0 keeps the codebook as it starts (a run that trains the rectifier alone). */
        quantizer: z.number().min(0).max(1).optional(),
        rectifier: rate.optional(),
      })
      .optional(),
    rectifierWeightDecay: z.number().min(0).max(1).optional(),
    rectifierLossWeighting: z.enum(RECTIFIER_LOSS_WEIGHTINGS).optional(),
    rectifierLoss: z.enum(RECTIFIER_LOSSES).optional(),
    reset: z
      .strictObject({
        ratio: z.number().min(0).max(1).optional(),
        noise: z.number().min(0).max(10).optional(),
      })
      .optional(),
    seed: z
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .optional(),
    assignment: z.enum(ASSIGNMENTS).optional(),
    /** Thresholds the new tokenizer's held-out evaluation must meet to be registered. */
    require: EvaluationRequirements.optional(),
  })
  .refine(
    (p) =>
      (p.rectifierLoss ?? "latent") === "latent" ||
      (p.rectifierLossWeighting ?? "uniform") === "uniform",
    {
      path: ["rectifierLossWeighting"],
      message: "weights the latent loss; with a decoder or image rectifierLoss leave it out",
    },
  );
export type TrainParameters = z.infer<typeof TrainParameters>;
