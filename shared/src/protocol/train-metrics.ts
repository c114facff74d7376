/**
 * The metric set a train task reports as each epoch ends (a job event of type `metrics`; the
 * worker's gpu-worker/src/train/metrics.ts makes it): what clients tabulate and plot. Values
 * JSON cannot carry (the PSNR of a perfect reconstruction) are left out, so only the epoch and
 * its losses are always there.
 */
import * as z from "zod";

export const EpochMetrics = z.object({
  /** 1-based. */
  epoch: z.int().min(1),
  steps: z.int().min(0).optional(),
  lossQuantizer: z.number(),
  lossRectifier: z.number(),
  gradNormQuantizer: z.number().optional(),
  gradNormRectifier: z.number().optional(),
  lrQuantizer: z.number().optional(),
  lrRectifier: z.number().optional(),
  /** Fractions of each group's codes used this epoch: their mean and the least group's. */
  usageMean: z.number().optional(),
  usageMin: z.number().optional(),
  replacedCodes: z.number().optional(),
  /** Held-out latent MSE of the quantized latents, then of the rectifier's output. */
  valLatentMse: z.number().optional(),
  valRectifiedMse: z.number().optional(),
  valPsnr: z.number().optional(),
  valSsim: z.number().optional(),
  vaePsnr: z.number().optional(),
  vaeSsim: z.number().optional(),
  seconds: z.number().optional(),
  latentsPerSecond: z.number().optional(),
});
export type EpochMetrics = z.infer<typeof EpochMetrics>;

/**
 * A warning when the rectifier moved the held-out latents further from the originals than the
 * quantized codes alone were: it is then hurting the reconstruction, not rectifying it.
 */
export function rectifierWarning(m: EpochMetrics): string | undefined {
  const { valLatentMse: quantized, valRectifiedMse: rectified } = m;
  if (quantized === undefined || rectified === undefined || rectified <= quantized) return;
  return `warning: epoch ${m.epoch}: the rectifier made held-out latent MSE worse (${quantized.toFixed(4)} quantized → ${rectified.toFixed(4)} rectified)`;
}
