/**
 * The default tokenizer's evaluation (EVALUATION.json beside it), on the default VAE's held-out
 * crops (its manifest's grid crops of the held-out photos): PSNR/SSIM of the VAE alone and of
 * the tokenizer (tokens → codebook → rectifier → de-normalise → VAE decoder), codebook usage per
 * group on seeded random crops of the held-out photos, and bits per image against PNG and JPEG of
 * the same crops. The tokenizer is loaded from its folder by the worker's own TokenizerStore.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "@revq/shared";
import sharp from "sharp";
import type { Tokenizer } from "../../gpu-worker/src/pipeline/tokenizer.ts";
import { withTokenizerFolder } from "../../gpu-worker/src/pipeline/tokenizer-folder.ts";
import { detokenize, tokenize } from "../../gpu-worker/src/pipeline/tokens.ts";
import { psnr, ssim } from "../../gpu-worker/src/train/image-metrics.ts";
import {
  CROP,
  gridCrops,
  groupByFile,
  loadScaled,
  photoFiles,
  randomCrops,
  TRAIN_SCALES,
} from "../default-vae/photos.ts";
import { fromBytes, toBytes } from "./crops.ts";

export type EvaluationOptions = {
  /** The tokenizer folder; EVALUATION.json is written into it. */
  out: string;
  photos: string;
  vaeDir: string;
  /** Where the training run left training.json, if it ran. */
  work: string;
  usageCrops: number;
  seed: number;
};

const EACH = CROP * CROP * 3;
const SIZE = { height: CROP, width: CROP };
const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;
const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"));

export async function evaluateTokenizerFolder(
  options: EvaluationOptions,
  log: (message: string) => void,
): Promise<void> {
  const heldoutFiles = photoFiles(join(options.photos, "heldout"));
  const crops = await heldOutCrops(heldoutFiles);
  const evaluation = await withTokenizerFolder(options.out, async (t) => {
    const { tokens, codesPerGroup: k, groups } = t.manifest.quantizer;
    const quality = await reconstructionQuality(t, crops.images, crops.count);
    const usage = await codeUsage(t, heldoutFiles, options.usageCrops, options.seed + 1);
    const training = existsSync(join(options.work, "training.json"))
      ? readJson(join(options.work, "training.json"))
      : undefined;
    const bits = tokens * Math.ceil(Math.log2(k));
    return {
      tokenizer: t.manifest.name,
      heldOutCrops: {
        description:
          "the default VAE's held-out crops (its manifest's evaluation: an n×n grid per held-out photo at short side 64, 128, 256), 8-bit",
        photos: heldoutFiles.map((f) => f.split("/").pop()),
        count: crops.count,
      },
      vae: {
        psnr: round(mean(quality.vaePsnr)),
        ssim: round(mean(quality.vaeSsim), 4),
        manifestPsnr: readJson(join(options.vaeDir, "manifest.json")).evaluation?.psnr ?? null,
      },
      tokenizerReconstruction: {
        psnr: round(mean(quality.tokenizerPsnr), 3),
        ssim: round(mean(quality.tokenizerSsim), 4),
        psnrGapToVae: round(mean(quality.vaePsnr) - mean(quality.tokenizerPsnr)),
      },
      withoutRectifier: {
        description:
          "the same tokens decoded with the codebook alone (no rectifier), for reference",
        psnr: round(mean(quality.plainPsnr), 3),
        ssim: round(mean(quality.plainSsim), 4),
      },
      usage: {
        description: `fraction of each group's ${k} codes hit by ${options.usageCrops} seeded random crops (seed ${options.seed + 1}, scales ${TRAIN_SCALES.join(", ")}) of the held-out photos`,
        crops: options.usageCrops,
        min: round(Math.min(...usage), 4),
        mean: round(mean(usage), 4),
        groupsAtLeast95: usage.filter((u) => u >= 0.95).length,
        groups,
        gridCropsDistinctFraction: round(gridUsage(t, quality.ids, crops.count), 4),
        trainingLastEpoch: training
          ? {
              min: round(training.lastEpoch.usageMin, 4),
              mean: round(training.lastEpoch.usageMean, 4),
            }
          : null,
      },
      compression: {
        tokens,
        codesPerGroup: k,
        bitsPerImage: bits,
        bytesPerImage: bits / 8,
        rawBitsPerImage: EACH * 8,
        png: await codecBaseline(crops, "png"),
        jpeg75: await codecBaseline(crops, "jpeg75"),
        jpeg90: await codecBaseline(crops, "jpeg90"),
      },
      // A rectifier trained alone on a kept codebook: the codebook's run, then this one.
      training: training?.codebookFrom ? training.codebookFrom.training : runSummary(training),
      ...(training?.codebookFrom
        ? {
            rectifierStage: {
              codebookFrom: training.codebookFrom.tokenizer,
              ...runSummary(training),
            },
          }
        : {}),
      perCrop: crops.names.map((name, i) => ({
        crop: name,
        vaePsnr: round(quality.vaePsnr[i]),
        tokenizerPsnr: round(quality.tokenizerPsnr[i]),
      })),
    };
  });
  writeFileSync(join(options.out, "EVALUATION.json"), `${JSON.stringify(evaluation, null, 2)}\n`);
  const { vae, tokenizerReconstruction: tok, usage, compression: c } = evaluation;
  log(
    `held-out: VAE ${vae.psnr} dB / ${vae.ssim}, tokenizer ${tok.psnr} dB / ${tok.ssim}; usage min ${usage.min} mean ${usage.mean}; ${c.bitsPerImage} bits vs PNG ${c.png.bitsPerImage}, JPEG75 ${c.jpeg75.bitsPerImage}, JPEG90 ${c.jpeg90.bitsPerImage}`,
  );
}

export type HeldOutCrops = {
  names: string[];
  count: number;
  bytes: Uint8Array;
  images: Float32Array;
};

/** The VAE manifest's held-out crops, as 8-bit pixels (what PNG/JPEG store) and as images. */
export async function heldOutCrops(heldoutFiles: string[]): Promise<HeldOutCrops> {
  const crops = gridCrops(await loadScaled(heldoutFiles, [64, 128, 256]));
  const bytes = new Uint8Array(crops.length * EACH);
  crops.forEach((c, i) => {
    bytes.set(toBytes(c.pixels), i * EACH);
  });
  return { names: crops.map((c) => c.name), count: crops.length, bytes, images: fromBytes(bytes) };
}

/** Per crop: PSNR and SSIM of the VAE alone, of the tokenizer, and of it without rectifier. */
export async function reconstructionQuality(t: Tokenizer, images: Float32Array, n: number) {
  const vaeOut = await t.vae.decode(await t.vae.encode(images, n), n);
  const ids = await tokenize(t, images, n);
  const tokenizerOut = await detokenize(t, ids, n);
  const plainOut = await detokenize({ ...t, rectifier: null }, ids, n);
  return {
    ids,
    vaePsnr: psnr(vaeOut, images, n, SIZE),
    vaeSsim: ssim(vaeOut, images, n, SIZE),
    tokenizerPsnr: psnr(tokenizerOut, images, n, SIZE),
    tokenizerSsim: ssim(tokenizerOut, images, n, SIZE),
    plainPsnr: psnr(plainOut, images, n, SIZE),
    plainSsim: ssim(plainOut, images, n, SIZE),
  };
}

/** Per group, the fraction of its codes that `count` seeded random held-out crops hit. */
export async function codeUsage(
  t: Tokenizer,
  heldoutFiles: string[],
  count: number,
  seed: number,
): Promise<number[]> {
  const { tokens, codesPerGroup: k, groups } = t.manifest.quantizer;
  const heldPhotos = groupByFile(await loadScaled(heldoutFiles, TRAIN_SCALES));
  const rng = new Rng(seed);
  const hits = new Uint32Array(groups * k);
  for (let start = 0; start < count; start += 64) {
    const m = Math.min(64, count - start);
    const batch = fromBytes(toBytes(randomCrops(heldPhotos, m, rng)));
    const found = await tokenize(t, batch, m);
    for (let i = 0; i < found.length; i++) hits[((i % tokens) % groups) * k + found[i]]++;
  }
  return Array.from({ length: groups }, (_, g) => {
    let used = 0;
    for (let c = 0; c < k; c++) if (hits[g * k + c] > 0) used++;
    return used / k;
  });
}

/**
 * Distinct codes the grid crops' tokens hit, over the most they could hit (each group sees
 * n · tokens / groups tokens).
 */
function gridUsage(t: Tokenizer, ids: Uint32Array, n: number): number {
  const { tokens, codesPerGroup: k, groups } = t.manifest.quantizer;
  const h = new Uint8Array(groups * k);
  for (let i = 0; i < ids.length; i++) h[((i % tokens) % groups) * k + ids[i]] = 1;
  return h.reduce((a, b) => a + b, 0) / (groups * Math.min(k, (n * tokens) / groups));
}

/** PNG or JPEG of the same crops: their size and quality. */
async function codecBaseline(crops: HeldOutCrops, kind: "png" | "jpeg75" | "jpeg90") {
  const { bytes, images, count: n } = crops;
  let total = 0;
  const decoded = new Float32Array(n * EACH);
  for (let i = 0; i < n; i++) {
    const img = sharp(bytes.subarray(i * EACH, (i + 1) * EACH), {
      raw: { width: CROP, height: CROP, channels: 3 },
    });
    const file =
      kind === "png"
        ? await img.png({ compressionLevel: 9 }).toBuffer()
        : await img.jpeg({ quality: kind === "jpeg75" ? 75 : 90 }).toBuffer();
    total += file.length;
    const raw = await sharp(file).removeAlpha().raw().toBuffer();
    decoded.set(fromBytes(new Uint8Array(raw)), i * EACH);
  }
  return {
    bitsPerImage: round((total * 8) / n, 0),
    bytesPerImage: round(total / n, 0),
    psnr: round(mean(psnr(decoded, images, n, SIZE))),
    ssim: round(mean(ssim(decoded, images, n, SIZE)), 4),
  };
}

/** A run's training.json as EVALUATION.json records it (null when no run wrote one). */
function runSummary(training: ReturnType<typeof readJson> | undefined) {
  if (!training) return null;
  return {
    crops: training.crops,
    seed: training.seed,
    epochs: training.config.epochs,
    batchSize: training.config.batchSize,
    learningRates: training.config.learningRates,
    rectifier: training.config.rectifier,
    rectifierLossWeighting: training.config.rectifierLossWeighting ?? "uniform",
    rectifierLoss: training.config.rectifierLoss ?? "latent",
    assignment: training.config.assignment,
    backend: training.backend,
    extractSeconds: training.extractSeconds,
    trainSeconds: training.trainSeconds,
    totalSeconds: training.totalSeconds,
    history: training.history,
  };
}
