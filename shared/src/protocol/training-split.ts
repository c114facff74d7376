/**
 * How a training splits a dataset: some images held out for validation, the rest trained on in
 * batches. The GPU worker splits by this (gpu-worker/src/train/prepare.ts) and refuses a dataset
 * whose training part makes no batch (dataset-too-small); the CLI checks the same rule before it
 * uploads anything.
 */

/** The worker's batch size when the parameters name none (the paper's, gpu-worker PAPER_DEFAULTS). */
export const DEFAULT_TRAIN_BATCH_SIZE = 256;

/** A tenth of the latents, at most 256: enough for a stable validation MSE, cheap every epoch. */
export function defaultHeldOut(count: number): number {
  return Math.min(256, Math.floor(count / 10));
}

/** The fewest images whose training part, after defaultHeldOut, makes one batch of `batchSize`. */
export function minimumTrainImages(batchSize: number): number {
  let count = batchSize;
  // Each step adds what is missing; holding out more as the count grows may need another step.
  while (count - defaultHeldOut(count) < batchSize) {
    count += batchSize - (count - defaultHeldOut(count));
  }
  return count;
}
