/**
 * An epoch's record as flat numbers by name: what the worker sends with its heartbeats (job
 * events a client can plot) and what the manifest keeps of the last epoch. Non-finite values
 * (the PSNR of a perfect reconstruction) are left out: JSON cannot carry them.
 */

import { bitsPerImage, type EpochMetrics, type TokenizerEvaluation } from "@revq/shared";
import type { EpochRecord } from "./run.ts";

/** The epoch's metric set, named as @revq/shared's EpochMetrics, which clients read it with. */
export function epochMetrics(record: EpochRecord): EpochMetrics {
  const v = record.validation;
  const all: Record<keyof EpochMetrics, number | undefined> = {
    epoch: record.epoch + 1,
    steps: record.steps,
    lossQuantizer: record.lossQuantizer,
    lossRectifier: record.lossRectifier,
    gradNormQuantizer: record.gradNormQuantizer,
    gradNormRectifier: record.gradNormRectifier,
    lrQuantizer: record.learningRates.quantizer,
    lrRectifier: record.learningRates.rectifier,
    usageMean: record.usageMean,
    usageMin: record.usageMin,
    replacedCodes: record.replacedCodes,
    valLatentMse: v?.latentMse,
    valRectifiedMse: v?.rectifiedMse,
    valPsnr: v?.psnr,
    valSsim: v?.ssim,
    vaePsnr: v?.vaePsnr,
    vaeSsim: v?.vaeSsim,
    seconds: record.seconds,
    latentsPerSecond: record.latentsPerSecond,
  };
  return Object.fromEntries(
    Object.entries(all).filter((e): e is [string, number] => Number.isFinite(e[1])),
  ) as EpochMetrics;
}

/**
 * The whole run in a few numbers, sent when the train task completes. The last epoch's own
 * metrics were already sent after that epoch; repeating them would draw its point twice.
 */
export function runMetrics(history: EpochRecord[]): Record<string, number> {
  const seconds = history.reduce((sum, e) => sum + e.seconds, 0);
  const latents = history.reduce((sum, e) => sum + e.latentsPerSecond * e.seconds, 0);
  return {
    epochs: history.length,
    trainSeconds: seconds,
    ...(seconds > 0 ? { latentsPerSecond: latents / seconds } : {}),
  };
}

/**
 * The tokenizer's evaluation (@revq/shared TokenizerEvaluation) from the run's last epoch: its
 * validation ran on the state that is exported, and the checkpoint keeps it, so exporting again
 * after a lost lease gives the same figures. None when nothing was held out.
 */
export function tokenizerEvaluation(
  last: EpochRecord,
  quantizer: { tokens: number; codes: number },
): TokenizerEvaluation | undefined {
  const v = last.validation;
  if (!v) return undefined;
  const quality = (psnr: number | undefined, ssim: number | undefined) => ({
    ...(Number.isFinite(psnr) ? { psnr } : {}),
    ssim: ssim as number,
  });
  return {
    heldOut: { latents: v.latents, images: v.images ?? 0 },
    latentMse: { quantized: v.latentMse, rectified: v.rectifiedMse },
    ...(v.images
      ? {
          images: {
            tokens: quality(v.psnr, v.ssim),
            vae: quality(v.vaePsnr, v.vaeSsim),
            tokensVsVae: quality(v.psnrToVae, v.ssimToVae),
          },
        }
      : {}),
    usage: { min: last.usageMin, mean: last.usageMean },
    bitsPerImage: bitsPerImage(quantizer.tokens, quantizer.codes),
  };
}
