/**
 * What a training run is: the quantizer's sizes, the rectifier, the optimisation and the seed,
 * with the paper's defaults (DESIGN.md step 6) and sized presets. Job parameters (free-form JSON
 * from the client) and CLI flags are parsed here, strictly: an unknown or out-of-range parameter
 * is an error that names it, never silently ignored.
 */

import {
  type Assignment,
  DEFAULT_TRAIN_BATCH_SIZE,
  type LatentShape,
  latentSize,
  quantLayout,
  type RectifierLoss,
  type RectifierLossWeighting,
  TrainParameters,
  type TrainPresetName,
} from "@revq/shared";
import { RECTIFIER_PRESETS, type RectifierConfig, rectifierSpec } from "../models/rectifier.ts";

export type TrainConfig = {
  latentShape: LatentShape;
  /** T, G, K. */
  tokens: number;
  groups: number;
  codes: number;
  rectifier: RectifierConfig;
  epochs: number;
  batchSize: number;
  learningRates: { quantizer: number; rectifier: number };
  rectifierWeightDecay: number;
  /** Absent: `uniform`, the paper's loss (kept absent so that such runs' configurations stay as they were). */
  rectifierLossWeighting?: Exclude<RectifierLossWeighting, "uniform">;
  /** Absent: `latent`, the paper's (absent for the same reason). */
  rectifierLoss?: Exclude<RectifierLoss, "latent">;
  /** Dead-code reset: at most ratio·K codes per group each epoch, copies plus noise·N(0,1). */
  reset: { ratio: number; noise: number };
  seed: number;
  assignment: Assignment;
};

/** The paper's optimisation (DESIGN.md step 6; ReVQ's scripts/train.py and configs). */
export const PAPER_DEFAULTS = {
  epochs: 100,
  batchSize: DEFAULT_TRAIN_BATCH_SIZE,
  learningRates: { quantizer: 0.01, rectifier: 0.01 * 0.05 },
  rectifierWeightDecay: 1e-4,
  reset: { ratio: 0.2, noise: 0.1 },
  seed: 42,
} as const;

/** `groups` absent: one codebook per token position (G = T), as in the paper. */
type Sizes = { tokens: number; groups?: number; codes: number; rectifier: RectifierConfig };

/**
 * Quantizer and rectifier sizes by name: the paper's three configurations on DC-AE f32c32
 * latents (32×8×8), and `small` for the repository's small VAE (8×16×16 latents, 2048 values
 * like DC-AE's): 512 tokens of 4 sharing one codebook of 4096 codes (what the default tokenizer
 * uses: a dataset of thousands of images cannot fill 512 per-position codebooks, see
 * docs/default-tokenizer.md) and a narrow two-block rectifier.
 */
export const TRAIN_PRESETS = {
  "512x16384": { tokens: 512, codes: 16384, rectifier: RECTIFIER_PRESETS["512x16384"] },
  "256x65536": { tokens: 256, codes: 65536, rectifier: RECTIFIER_PRESETS["256x65536"] },
  "256x262144": { tokens: 256, codes: 262144, rectifier: RECTIFIER_PRESETS["256x262144"] },
  small: {
    tokens: 512,
    groups: 1,
    codes: 4096,
    rectifier: { latentChannels: 8, channels: 64, blocks: 2, headDim: 16, multiscales: [5] },
  },
} as const satisfies Record<TrainPresetName, Sizes>;

export class TrainConfigError extends Error {
  override name = "TrainConfigError";
}

/**
 * The run's configuration for latents of `latentShape`: the preset (default `small` for 2048-value
 * latents of 8 channels, else `512x16384`), then each given parameter over it. `assignment`
 * defaults to `device` on an accelerator and `exact` elsewhere.
 */
export function resolveTrainConfig(
  parameters: unknown,
  latentShape: LatentShape,
  accelerated: boolean,
): TrainConfig {
  const parsed = TrainParameters.safeParse(parameters ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `${i.path.join(".") || "parameters"}: ${i.message}`,
    );
    throw new TrainConfigError(`invalid training parameters: ${problems.join("; ")}`);
  }
  const p = parsed.data;
  const preset: Sizes = TRAIN_PRESETS[p.preset ?? defaultPreset(latentShape)];
  const rectifier = presetRectifier(preset.rectifier, latentShape, p.rectifier);
  const tokens = p.tokens ?? preset.tokens;
  const config: TrainConfig = {
    latentShape,
    tokens,
    groups: p.groups ?? preset.groups ?? tokens,
    codes: p.codes ?? preset.codes,
    rectifier,
    epochs: p.epochs ?? PAPER_DEFAULTS.epochs,
    batchSize: p.batchSize ?? PAPER_DEFAULTS.batchSize,
    learningRates: { ...PAPER_DEFAULTS.learningRates, ...p.learningRates },
    rectifierWeightDecay: p.rectifierWeightDecay ?? PAPER_DEFAULTS.rectifierWeightDecay,
    ...(p.rectifierLossWeighting && p.rectifierLossWeighting !== "uniform"
      ? { rectifierLossWeighting: p.rectifierLossWeighting }
      : {}),
    ...(p.rectifierLoss && p.rectifierLoss !== "latent" ? { rectifierLoss: p.rectifierLoss } : {}),
    reset: { ...PAPER_DEFAULTS.reset, ...p.reset },
    seed: p.seed ?? PAPER_DEFAULTS.seed,
    assignment: p.assignment ?? (accelerated ? "device" : "exact"),
  };
  checkTrainConfig(config);
  return config;
}

/**
 * The preset's rectifier with each given field over it; its latent channels become the VAE's
 * once any field is given (checkTrainConfig reports a preset made for other latents).
 */
function presetRectifier(
  preset: RectifierConfig,
  shape: LatentShape,
  given: TrainParameters["rectifier"],
): RectifierConfig {
  if (!given) return { ...preset, multiscales: [...preset.multiscales] };
  const { residual, ...sizes } = { ...preset, latentChannels: shape.channels, ...given };
  return { ...sizes, multiscales: [...sizes.multiscales], ...(residual ? { residual: true } : {}) };
}

function defaultPreset(shape: LatentShape): TrainPresetName {
  return shape.channels === 8 && latentSize(shape) === 2048 ? "small" : "512x16384";
}

/** The sizes must fit the latent and each other; throws TrainConfigError naming the mismatch. */
export function checkTrainConfig(config: TrainConfig): void {
  const { latentShape: s, rectifier } = config;
  const fail = (message: string): never => {
    throw new TrainConfigError(`invalid training configuration: ${message}`);
  };
  try {
    quantLayout(s, config.tokens, config.groups);
  } catch (error) {
    fail((error as Error).message);
  }
  if (rectifier.latentChannels !== s.channels) {
    fail(
      `the rectifier is for ${rectifier.latentChannels}-channel latents, the VAE's have ${s.channels} (give rectifier explicitly)`,
    );
  }
  try {
    rectifierSpec(rectifier);
  } catch (error) {
    fail((error as Error).message);
  }
  if (rectifier.multiscales.some((k) => k % 2 === 0)) fail("rectifier kernel sizes must be odd");
  if (config.groups * config.codes * (latentSize(s) / config.tokens) > 2 ** 31) {
    fail("the codebook would have more than 2^31 values");
  }
}
