/**
 * The default tokenizer's training settings (docs/default-tokenizer.md), as
 * scripts/train-default-tokenizer.ts's defaults and what scripts/token-count-sweep.ts trains its
 * variants with.
 */
export const DEFAULT_TOKENIZER = {
  crops: 4096,
  seed: 2507,
  tokens: 512,
  groups: 1,
  codes: 4096,
  epochs: 24,
  batchSize: 16,
  rectifier: { channels: 16, blocks: 1, headDim: 16, multiscales: [5], residual: false },
  rectifierLr: 0.002,
  rectifierLossWeighting: "uniform",
  rectifierLoss: "latent",
} as const;

/** Where train-default-tokenizer keeps its crops, latents and checkpoints. */
export const DEFAULT_WORK = ".revq/cache/default-tokenizer";
