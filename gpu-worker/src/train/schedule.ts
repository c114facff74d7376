/**
 * The learning-rate schedule (DESIGN.md step 6): exponential decay once per epoch to 5% of the
 * start over the run, gamma = 0.05^(1/epochs). Like PyTorch's ExponentialLR, the rate of epoch e
 * is the start multiplied by gamma e times (not gamma^e), so resumed runs land on the same floats.
 */

export const FINAL_LR_FRACTION = 0.05;

export function decayPerEpoch(epochs: number): number {
  if (!Number.isSafeInteger(epochs) || epochs < 1) {
    throw new RangeError(`epochs must be a positive integer, got ${epochs}`);
  }
  return FINAL_LR_FRACTION ** (1 / epochs);
}

/** The learning rate during epoch `epoch` (0-based) of a run of `epochs`. */
export function learningRateAt(initial: number, epoch: number, epochs: number): number {
  const gamma = decayPerEpoch(epochs);
  let lr = initial;
  for (let e = 0; e < epoch; e++) lr *= gamma;
  return lr;
}
