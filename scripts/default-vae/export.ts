/**
 * Writes the trained model where the repository ships it: model.safetensors (PyTorch names and
 * layouts), heldout-crops.png (a few fixed held-out crops side by side, so tests can check the
 * committed weights without fetching photos) and manifest.json (what the model is, what it was
 * trained on and how, how good it is, and the command that makes it again).
 */

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import sharp from "sharp";
import { saveSmallVae } from "../../gpu-worker/src/models/small-vae/checkpoint.ts";
import { spatialCompression } from "../../gpu-worker/src/models/small-vae/config.ts";
import type { SmallVae } from "../../gpu-worker/src/models/small-vae/model.ts";
import { type Evaluation, evaluate } from "./evaluate.ts";
import { CROP, type FixedCrop } from "./photos.ts";

/** The held-out crops shipped for tests: each photo whole at 64, and its first 128 and 256 crop. */
export function testCrops(heldout: FixedCrop[]): FixedCrop[] {
  const picked = new Map<string, FixedCrop>();
  for (const crop of heldout) {
    const key = `${crop.name.split("@")[0]}@${crop.scale}`;
    if (!picked.has(key)) picked.set(key, crop);
  }
  return [...picked.values()];
}

export type Training = {
  seed: number;
  steps: number;
  batch: number;
  learningRate: { base: number; warmupSteps: number; halfLifeSteps: number; cooldownSteps: number };
  backend: string;
  trainSeconds: number;
  /** Smoothed over the last ~50 steps; null if this process ran none and the checkpoint had none. */
  finalLoss: number | null;
};

export async function exportModel(run: {
  vae: SmallVae;
  out: string;
  photos: string;
  heldout: FixedCrop[];
  evaluation: Evaluation;
  training: Training;
  trainFiles: string[];
  heldoutFiles: string[];
  /** The command that makes this model again. */
  command: string;
}): Promise<void> {
  const { vae, out } = run;
  mkdirSync(out, { recursive: true });
  const weights = await saveSmallVae(vae, { format: "pt" });
  writeFileSync(join(out, "model.safetensors"), weights);

  const shipped = testCrops(run.heldout);
  const strip = new Uint8Array(shipped.length * CROP * CROP * 3);
  const stride = shipped.length * CROP * 3;
  shipped.forEach((crop, i) => {
    for (let k = 0; k < crop.pixels.length; k++) {
      const pixel = Math.floor(k / 3);
      const [y, x] = [Math.floor(pixel / CROP), pixel % CROP];
      strip[y * stride + (i * CROP + x) * 3 + (k % 3)] = Math.round((crop.pixels[k] + 1) * 127.5);
    }
  });
  const png = await sharp(strip, {
    raw: { width: shipped.length * CROP, height: CROP, channels: 3 },
  })
    .png({ compressionLevel: 9 })
    .toBuffer();
  writeFileSync(join(out, "heldout-crops.png"), png);
  const shippedQuality = await evaluate(vae, shipped);

  const { config } = vae;
  const f = spatialCompression(config);
  const manifest = {
    description:
      "The small convolutional autoencoder revq ships so that it works with no downloads: DC-AE's design (ResBlocks with RMSNorm, pixel-(un)shuffle down/up blocks with averaging/repeating shortcuts) at a CPU-trainable size. `vae` is the entry a tokenizer manifest takes (its weights path relative to this file). See docs/default-vae.md.",
    vae: {
      name: "revq-default-vae",
      kind: "small-conv",
      inputResolution: { height: CROP, width: CROP },
      latentShape: { channels: config.latentChannels, height: CROP / f, width: CROP / f },
      config,
      weights: {
        path: "model.safetensors",
        bytes: weights.length,
        sha256: createHash("sha256").update(weights).digest("hex"),
      },
    },
    parameters: vae.bindings.reduce((n, b) => n + b.param.size, 0),
    objective:
      "A plain (deterministic) autoencoder: loss mean|x̂−x| + mean(x̂−x)² on pixels in [-1, 1], no KL term. ReVQ standardises every latent dimension with training-set statistics before quantizing, so a KL term's only job here (a latent of known scale) is done there; the L1 term keeps gradients alive at small errors, the MSE term is what PSNR measures.",
    training: {
      ...run.training,
      optimizer:
        "Adam (β1 0.9, β2 0.99, ε 1e-8), gradients clipped to global norm 1, no weight decay",
      learningRateSchedule:
        "base · min(1, step / warmupSteps) · 0.5^(step / halfLifeSteps) · min(1, (steps − step + 1) / (cooldownSteps + 1)): a function of the step only until the last cooldownSteps, which ramp it down linearly",
      data: "random 64×64 crops (photo, then scale, position, horizontal flip, all from one seeded xoshiro128** generator) of the training photos resized (Lanczos-3) so that their short side is 64, 96, 128, 192, 256, 384 or 512 pixels (never enlarged); 64 is the whole photo, as the worker fits inputs",
      photos: run.trainFiles.map((p) => basename(p)),
    },
    evaluation: {
      method:
        "held-out photos only (never trained on): at short side 64 (the whole photo, centre crop, as the worker fits inputs), 128 (2×2 grid of 64×64 crops) and 256 (4×4 grid); PSNR on [0, 1] after clamping, SSIM with an 11×11 Gaussian window (σ 1.5) over the valid part, per RGB channel; both averaged over crops",
      photos: run.heldoutFiles.map((p) => basename(p)),
      psnr: run.evaluation.psnr,
      ssim: run.evaluation.ssim,
      crops: run.evaluation.crops,
      byScale: run.evaluation.byScale,
      testCrops: {
        file: "heldout-crops.png",
        crops: shipped.map((c) => c.name),
        psnr: shippedQuality.perCrop,
        meanPsnr: shippedQuality.psnr,
      },
    },
    dataProvenance: JSON.parse(readFileSync(join(run.photos, "SOURCES.json"), "utf8")),
    command: run.command,
  };
  writeFileSync(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}
