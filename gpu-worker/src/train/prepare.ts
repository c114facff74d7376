/**
 * From extracted latents to what a run trains on: the held-out split (by the seed alone), the
 * normalisation statistics of the training part, and a few held-out images for PSNR/SSIM.
 */

import type { Vae } from "../models/vae.ts";
import { type LatentSet, latentStatistics, splitHeldOut, subset } from "./dataset.ts";
import type { ImageSource } from "./extract.ts";
import type { TrainData } from "./run.ts";
import { imageProbe } from "./validate.ts";

/** Held-out images decoded for PSNR/SSIM each epoch. */
export const DEFAULT_PROBE_IMAGES = 8;

export type PrepareOptions = {
  heldOut: number;
  seed: number;
  /** The VAE the latents came from: for the image losses, and with `images` for the probe. */
  vae?: Vae;
  /** The dataset's images: the image loss's targets, and the first `count` held-out the probe. */
  images?: { source: ImageSource; count: number };
};

export async function prepareTrainData(
  latents: LatentSet,
  options: PrepareOptions,
): Promise<TrainData> {
  const split = splitHeldOut(latents.count, options.heldOut, options.seed);
  const data: TrainData = {
    latents,
    train: split.train,
    heldOut: subset(latents, split.heldOut),
    normalizer: latentStatistics(latents, split.train),
    ...(options.vae ? { vae: options.vae } : {}),
    ...(options.images ? { images: options.images.source } : {}),
  };
  const { vae, images } = options;
  const probeCount = Math.min(images?.count ?? 0, split.heldOut.length);
  if (!vae || !images || probeCount === 0) return data;
  const { height, width } = vae.inputResolution;
  const pixels = new Float32Array(probeCount * height * width * 3);
  for (let i = 0; i < probeCount; i++) {
    pixels.set(await images.source.load(split.heldOut[i]), i * height * width * 3);
  }
  return { ...data, probe: await imageProbe(vae, pixels, probeCount) };
}
