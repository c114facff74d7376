/**
 * Trains the tokenizer revq ships by default (docs/default-tokenizer.md) on top of the default VAE
 * (models/default-vae, frozen, pinned by SHA-256) and writes it to models/default-tokenizer/ with
 * its evaluation (EVALUATION.json). Run through `npm run train:default-tokenizer`, which fetches
 * the photos first.
 *
 * 1. Seeded 64×64 training crops of the training photos (scripts/default-vae/photos.ts, the VAE's
 *    own crop pipeline; the held-out photos are never used) written as PNGs to
 *    <work>/crops/ (kept: the same seed and count reuse them).
 * 2. The offline trainer's code path (what revq-train runs): latents extracted once into
 *    <work>/latents/, the held-out split, a checkpoint every epoch in <work>/checkpoints/ (a run
 *    that stops resumes there when started again with the same parameters), the export.
 * 3. Evaluation on the VAE's held-out crops (its manifest's grid crops of the held-out photos):
 *    PSNR/SSIM of the VAE alone and of the tokenizer (tokens → codebook → rectifier →
 *    de-normalise → VAE decoder), codebook usage per group on seeded random crops of the
 *    held-out photos, and bits per image against PNG and JPEG of the same crops.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  canonicalJson,
  createCodebook,
  denormalize,
  lookupCodes,
  NearestCodeIndex,
  normalize,
  parseManifest,
  parseSafetensors,
  Rng,
  readTensor,
  sha256Hex,
  type TokenizerManifest,
} from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import sharp from "sharp";
import { type BackendChoice, isBackendChoice, selectBackend } from "../gpu-worker/src/backend.ts";
import { loadVae } from "../gpu-worker/src/models/load-vae.ts";
import {
  disposeRectifier,
  loadRectifier,
  type Rectifier,
  rectify,
} from "../gpu-worker/src/models/rectifier.ts";
import { safetensorsSource } from "../gpu-worker/src/models/sources.ts";
import type { Vae, VaeSpec } from "../gpu-worker/src/models/vae.ts";
import { loadCheckpoint, saveCheckpoint } from "../gpu-worker/src/train/checkpoint.ts";
import { imageFolder } from "../gpu-worker/src/train/cli-images.ts";
import { resolveTrainConfig } from "../gpu-worker/src/train/config.ts";
import { exportTokenizer } from "../gpu-worker/src/train/export.ts";
import { extractLatents } from "../gpu-worker/src/train/extract.ts";
import { folderStore } from "../gpu-worker/src/train/folder-store.ts";
import { psnr, ssim } from "../gpu-worker/src/train/image-metrics.ts";
import { defaultHeldOut, prepareTrainData } from "../gpu-worker/src/train/prepare.ts";
import { disposeRun, startRun, type TrainRun, train } from "../gpu-worker/src/train/run.ts";
import {
  CROP,
  type FixedCrop,
  gridCrops,
  groupByFile,
  loadScaled,
  photoFiles,
  randomCrops,
  TRAIN_SCALES,
} from "./default-vae/photos.ts";

/** A tokenizer folder loaded for evaluation (and by the tests): checked against its manifest. */
export type LoadedTokenizer = {
  manifest: TokenizerManifest;
  vae: Vae;
  rectifier: Rectifier;
  mean: Float32Array;
  std: Float32Array;
  index: NearestCodeIndex;
  codebook: ReturnType<typeof createCodebook>;
};

export async function loadTokenizerFolder(dir: string): Promise<LoadedTokenizer> {
  const manifest = parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
  const file = async (ref: { path: string; bytes: number; sha256: string }) => {
    const bytes = new Uint8Array(readFileSync(join(dir, ref.path)));
    if (bytes.length !== ref.bytes || (await sha256Hex(bytes)) !== ref.sha256) {
      throw new Error(`${join(dir, ref.path)} does not match its manifest (size or SHA-256)`);
    }
    return bytes;
  };
  const { vae: vaeSpec, quantizer, files } = manifest;
  if (!vaeSpec.weights) throw new Error("the tokenizer does not ship its VAE's weights");
  const stats = parseSafetensors(await file(files.stats));
  const mean = readTensor(stats, "mean").data as Float32Array;
  const std = readTensor(stats, "std").data as Float32Array;
  const codebookFile = parseSafetensors(await file(files.codebook));
  const codebook = createCodebook(
    quantizer.groups,
    quantizer.codesPerGroup,
    quantizer.codeDim,
    readTensor(codebookFile, "codebook").data as Float32Array,
  );
  const spec = manifest.rectifier;
  if (spec.architecture === "identity" || !files.rectifier) {
    throw new Error("the default tokenizer has a rectifier");
  }
  const rectifier = await loadRectifier(
    {
      latentChannels: vaeSpec.latentShape.channels,
      channels: spec.channels,
      blocks: spec.blocks,
      headDim: spec.attentionHeadDim,
      multiscales: spec.qkvMultiscales,
    },
    safetensorsSource(await file(files.rectifier)),
  );
  const vae = await loadVae(vaeSpec, safetensorsSource(await file(vaeSpec.weights)));
  return {
    manifest,
    vae,
    rectifier,
    mean,
    std,
    index: new NearestCodeIndex(codebook),
    codebook,
  };
}

/** Images (n × H × W × 3 in [-1, 1]) → token ids (n × T). */
export async function tokenize(t: LoadedTokenizer, images: Float32Array, n: number) {
  const tokens = t.manifest.quantizer.tokens;
  const latents = await t.vae.encode(images, n);
  const ids = new Uint32Array(n * tokens);
  const dims = latents.length / n;
  for (let i = 0; i < n; i++) {
    const z = normalize(latents.subarray(i * dims, (i + 1) * dims), t.mean, t.std);
    ids.set(t.index.search(z, tokens).ids, i * tokens);
  }
  return ids;
}

/** Token ids (n × T) → images (n × H × W × 3): codebook, rectifier, de-normalise, VAE decoder. */
export async function detokenize(
  t: LoadedTokenizer,
  ids: Uint32Array,
  n: number,
  options: { rectifier?: boolean } = {},
) {
  const { channels: c, height: h, width: w } = t.manifest.vae.latentShape;
  const quantized = lookupCodes(t.codebook, ids, t.manifest.quantizer.tokens);
  if (options.rectifier === false) return t.vae.decode(denormalize(quantized, t.mean, t.std), n);
  const out = tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor4d(quantized, [n, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
    return tf.transpose(rectify(t.rectifier, nhwc), [0, 3, 1, 2]);
  });
  const rectified = (await out.data()) as Float32Array;
  out.dispose();
  return t.vae.decode(denormalize(rectified, t.mean, t.std), n);
}

export function disposeTokenizer(t: LoadedTokenizer): void {
  t.vae.dispose();
  disposeRectifier(t.rectifier);
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      crops: { type: "string", default: "4096" },
      codes: { type: "string", default: "4096" },
      tokens: { type: "string", default: "512" },
      groups: { type: "string", default: "1" },
      epochs: { type: "string", default: "24" },
      "batch-size": { type: "string", default: "16" },
      channels: { type: "string", default: "16" },
      blocks: { type: "string", default: "1" },
      "head-dim": { type: "string", default: "16" },
      assignment: { type: "string", default: "exact" },
      "rectifier-lr": { type: "string", default: "0.002" },
      "usage-crops": { type: "string", default: "2048" },
      seed: { type: "string", default: "2507" },
      backend: { type: "string", default: "wasm" },
      photos: { type: "string", default: ".revq/cache/photos" },
      vae: { type: "string", default: "models/default-vae" },
      work: { type: "string", default: ".revq/cache/default-tokenizer" },
      out: { type: "string", default: "models/default-tokenizer" },
      "eval-only": { type: "boolean", default: false },
    },
  });
  const int = (name: keyof typeof args) => {
    const v = Number(args[name]);
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
    return v;
  };
  const backend = String(args.backend);
  if (!isBackendChoice(backend)) throw new Error(`--backend ${backend} is not a backend`);
  const selection = await selectBackend(backend as BackendChoice);
  log(`backend: ${selection.reason}`);
  const seed = int("seed");
  const out = resolve(String(args.out));
  const work = resolve(String(args.work));
  const photos = String(args.photos);

  // The frozen VAE, pinned by its manifest's SHA-256.
  const vaeDir = String(args.vae);
  const vaeManifest = JSON.parse(readFileSync(join(vaeDir, "manifest.json"), "utf8"));
  const vaeSpec = vaeManifest.vae as VaeSpec;
  if (!vaeSpec.weights) throw new Error(`${vaeDir}'s manifest names no weights`);
  const vaeWeights = new Uint8Array(readFileSync(join(vaeDir, vaeSpec.weights.path)));
  if ((await sha256Hex(vaeWeights)) !== vaeSpec.weights.sha256) {
    throw new Error(`${vaeDir}/${vaeSpec.weights.path} does not match its manifest's SHA-256`);
  }
  const { weights: _, ...vaeBare } = vaeSpec;

  if (!args["eval-only"]) {
    const started = performance.now();
    const crops = int("crops");
    const cropDir = join(work, "crops", `${seed}-${crops}`);
    await writeCrops(photos, cropDir, crops, seed);
    const vae = await loadVae(vaeSpec, safetensorsSource(vaeWeights));
    const images = await imageFolder(cropDir, vaeSpec.inputResolution);
    const vaeId = await sha256Hex(canonicalJson(vaeSpec));
    const datasetId = await sha256Hex(`${images.identity}:${vaeId}`);
    const t0 = performance.now();
    const latents = await extractLatents(
      images,
      vae,
      folderStore(join(work, "latents", datasetId.slice(0, 16))),
      {
        shardSize: 1024,
        batchSize: 32,
        onProgress: (done, total, reused) =>
          log(`latents: ${done}/${total} ${reused ? "(cached)" : "extracted"}`),
      },
    );
    const extractSeconds = (performance.now() - t0) / 1000;
    const config = resolveTrainConfig(
      {
        preset: "small",
        tokens: int("tokens"),
        groups: int("groups"),
        codes: int("codes"),
        epochs: int("epochs"),
        batchSize: int("batch-size"),
        seed,
        assignment: args.assignment,
        learningRates: { rectifier: Number(args["rectifier-lr"]) },
        rectifier: {
          channels: int("channels"),
          blocks: int("blocks"),
          headDim: int("head-dim"),
          multiscales: [5],
        },
      },
      vaeSpec.latentShape,
      false,
    );
    const data = await prepareTrainData(latents, {
      heldOut: defaultHeldOut(latents.count),
      seed,
      images: { source: images, vae, count: 16 },
    });
    const checkpoints = folderStore(join(work, "checkpoints"));
    let run: TrainRun | null = await loadCheckpoint(checkpoints, datasetId).catch(() => null);
    if (run && canonicalJson(run.config) !== canonicalJson(config)) {
      log("the checkpoint is of other parameters: starting over");
      disposeRun(run);
      run = null;
    }
    if (run) log(`resuming after epoch ${run.epoch}/${config.epochs}`);
    else rmSync(join(work, "checkpoints"), { recursive: true, force: true });
    const r = run ?? (await startRun(config, data));
    log(
      `${latents.count} latents (${data.train.length} train, ${data.heldOut.count} held out), ${JSON.stringify(config)}`,
    );
    await train(r, data, {
      onEpoch: async (e, current) => {
        const v = e.validation;
        log(
          `epoch ${e.epoch + 1}/${config.epochs}: loss q ${e.lossQuantizer.toFixed(4)} r ${e.lossRectifier.toFixed(4)}, usage min ${e.usageMin.toFixed(3)} mean ${e.usageMean.toFixed(3)}, replaced ${e.replacedCodes}` +
            (v
              ? `, val mse ${v.latentMse.toFixed(4)} → ${v.rectifiedMse.toFixed(4)}, PSNR ${v.psnr?.toFixed(2)} (VAE ${v.vaePsnr?.toFixed(2)}), SSIM ${v.ssim?.toFixed(3)}`
              : "") +
            `, ${e.seconds.toFixed(0)} s`,
        );
        await saveCheckpoint(checkpoints, current, datasetId);
      },
    });
    const tokenizer = await exportTokenizer(r, data.normalizer, {
      name: "revq-default-tokenizer",
      description:
        "The tokenizer revq ships by default: ReVQ on the repository's default VAE (models/default-vae, frozen), trained on seeded 64×64 crops of the training photos. See docs/default-tokenizer.md and EVALUATION.json.",
      vae: vaeBare,
      vaeWeights,
      dataset: {
        name: "revq-default-vae-train-crops",
        images: latents.count,
        description: `${crops} seeded (seed ${seed}) random 64×64 crops of the default VAE's training photos (scripts/default-vae/photos.ts, scales ${TRAIN_SCALES.join(", ")})`,
      },
    });
    rmSync(out, { recursive: true, force: true });
    for (const [path, bytes] of tokenizer.files) {
      mkdirSync(dirname(join(out, path)), { recursive: true });
      writeFileSync(join(out, path), bytes);
    }
    writeFileSync(join(out, "manifest.json"), tokenizer.manifestBytes);
    const trainSeconds = r.history.reduce((s, e) => s + e.seconds, 0);
    const last = r.history.at(-1);
    writeFileSync(
      join(work, "training.json"),
      JSON.stringify(
        {
          hash: tokenizer.hash,
          crops,
          seed,
          config,
          extractSeconds: Math.round(extractSeconds),
          trainSeconds: Math.round(trainSeconds),
          totalSeconds: Math.round((performance.now() - started) / 1000),
          backend: selection.backend,
          lastEpoch: last,
          history: r.history.map((e) => ({
            epoch: e.epoch,
            lossQuantizer: e.lossQuantizer,
            lossRectifier: e.lossRectifier,
            usageMin: e.usageMin,
            usageMean: e.usageMean,
            psnr: e.validation?.psnr,
          })),
        },
        null,
        2,
      ),
    );
    log(`wrote ${out} (${tokenizer.hash}), ${trainSeconds.toFixed(0)} s training`);
    disposeRun(r);
    vae.dispose();
  }

  await evaluateFolder(out, photos, vaeDir, work, int("usage-crops"), seed);
}

/** N seeded random crops of the training photos as PNGs (skipped when already written). */
async function writeCrops(photos: string, dir: string, count: number, seed: number) {
  if (existsSync(dir) && readdirSync(dir).filter((n) => n.endsWith(".png")).length === count) {
    log(`${count} crops in ${dir} (kept)`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const trainPhotos = groupByFile(
    await loadScaled(photoFiles(join(photos, "train")), TRAIN_SCALES),
  );
  const rng = new Rng(seed);
  const each = CROP * CROP * 3;
  const chunk = 256;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const pixels = randomCrops(trainPhotos, n, rng);
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        sharp(toBytes(pixels.subarray(i * each, (i + 1) * each)), {
          raw: { width: CROP, height: CROP, channels: 3 },
        })
          .png()
          .toFile(join(dir, `crop-${String(start + i).padStart(6, "0")}.png`)),
      ),
    );
  }
  log(`${count} crops written to ${dir}`);
}

function toBytes(pixels: Float32Array): Uint8Array {
  return Uint8Array.from(pixels, (v) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5))));
}

function fromBytes(bytes: Uint8Array): Float32Array {
  return Float32Array.from(bytes, (v) => v / 127.5 - 1);
}

async function evaluateFolder(
  out: string,
  photos: string,
  vaeDir: string,
  work: string,
  usageCrops: number,
  seed: number,
) {
  const t = await loadTokenizerFolder(out);
  const { tokens, codesPerGroup: k, groups } = t.manifest.quantizer;
  const heldoutFiles = photoFiles(join(photos, "heldout"));
  // The VAE manifest's held-out crops, as 8-bit pixels (what PNG/JPEG store).
  const crops: FixedCrop[] = gridCrops(await loadScaled(heldoutFiles, [64, 128, 256]));
  const n = crops.length;
  const each = CROP * CROP * 3;
  const bytes = new Uint8Array(n * each);
  crops.forEach((c, i) => {
    bytes.set(toBytes(c.pixels), i * each);
  });
  const images = fromBytes(bytes);
  const size = { height: CROP, width: CROP };
  const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;
  const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

  const vaeOut = await t.vae.decode(await t.vae.encode(images, n), n);
  const ids = await tokenize(t, images, n);
  const tokOut = await detokenize(t, ids, n);
  const plainOut = await detokenize(t, ids, n, { rectifier: false });
  const plainPsnr = psnr(plainOut, images, n, size);
  const vaePsnr = psnr(vaeOut, images, n, size);
  const tokPsnr = psnr(tokOut, images, n, size);
  const vaeSsim = ssim(vaeOut, images, n, size);
  const tokSsim = ssim(tokOut, images, n, size);

  // Usage per group on seeded random crops of the held-out photos (many more than K per group).
  const heldPhotos = groupByFile(await loadScaled(heldoutFiles, TRAIN_SCALES));
  const rng = new Rng(seed + 1);
  const hits = new Uint32Array(groups * k);
  for (let start = 0; start < usageCrops; start += 64) {
    const m = Math.min(64, usageCrops - start);
    const batch = fromBytes(toBytes(randomCrops(heldPhotos, m, rng)));
    const found = await tokenize(t, batch, m);
    for (let i = 0; i < found.length; i++) hits[((i % tokens) % groups) * k + found[i]]++;
  }
  const usage = Array.from({ length: groups }, (_, g) => {
    let used = 0;
    for (let c = 0; c < k; c++) if (hits[g * k + c] > 0) used++;
    return used / k;
  });
  // Distinct codes the grid crops hit, over the most they could hit (each group sees
  // n · tokens / groups tokens).
  const gridUsage = (() => {
    const h = new Uint8Array(groups * k);
    for (let i = 0; i < ids.length; i++) h[((i % tokens) % groups) * k + ids[i]] = 1;
    return h.reduce((a, b) => a + b, 0) / (groups * Math.min(k, (n * tokens) / groups));
  })();

  // PNG and JPEG of the same crops.
  const codec = async (kind: "png" | "jpeg75" | "jpeg90") => {
    let total = 0;
    const decoded = new Float32Array(n * each);
    for (let i = 0; i < n; i++) {
      const img = sharp(bytes.subarray(i * each, (i + 1) * each), {
        raw: { width: CROP, height: CROP, channels: 3 },
      });
      const file =
        kind === "png"
          ? await img.png({ compressionLevel: 9 }).toBuffer()
          : await img.jpeg({ quality: kind === "jpeg75" ? 75 : 90 }).toBuffer();
      total += file.length;
      const raw = await sharp(file).removeAlpha().raw().toBuffer();
      decoded.set(fromBytes(new Uint8Array(raw)), i * each);
    }
    return {
      bitsPerImage: round((total * 8) / n, 0),
      bytesPerImage: round(total / n, 0),
      psnr: round(mean(psnr(decoded, images, n, size))),
      ssim: round(mean(ssim(decoded, images, n, size)), 4),
    };
  };
  const bits = tokens * Math.ceil(Math.log2(k));
  const vaeManifest = JSON.parse(readFileSync(join(vaeDir, "manifest.json"), "utf8"));
  const trainingPath = join(work, "training.json");
  const training = existsSync(trainingPath)
    ? JSON.parse(readFileSync(trainingPath, "utf8"))
    : undefined;
  const evaluation = {
    tokenizer: t.manifest.name,
    heldOutCrops: {
      description:
        "the default VAE's held-out crops (its manifest's evaluation: an n×n grid per held-out photo at short side 64, 128, 256), 8-bit",
      photos: heldoutFiles.map((f) => f.split("/").pop()),
      count: n,
    },
    vae: {
      psnr: round(mean(vaePsnr)),
      ssim: round(mean(vaeSsim), 4),
      manifestPsnr: vaeManifest.evaluation?.psnr ?? null,
    },
    tokenizerReconstruction: {
      psnr: round(mean(tokPsnr)),
      ssim: round(mean(tokSsim), 4),
      psnrGapToVae: round(mean(vaePsnr) - mean(tokPsnr)),
    },
    withoutRectifier: {
      description: "the same tokens decoded with the codebook alone (no rectifier), for reference",
      psnr: round(mean(plainPsnr)),
      ssim: round(mean(ssim(plainOut, images, n, size)), 4),
    },
    usage: {
      description: `fraction of each group's ${k} codes hit by ${usageCrops} seeded random crops (seed ${seed + 1}, scales ${TRAIN_SCALES.join(", ")}) of the held-out photos`,
      crops: usageCrops,
      min: round(Math.min(...usage), 4),
      mean: round(mean(usage), 4),
      groupsAtLeast95: usage.filter((u) => u >= 0.95).length,
      groups,
      gridCropsDistinctFraction: round(gridUsage, 4),
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
      rawBitsPerImage: each * 8,
      png: await codec("png"),
      jpeg75: await codec("jpeg75"),
      jpeg90: await codec("jpeg90"),
    },
    training: training
      ? {
          crops: training.crops,
          seed: training.seed,
          epochs: training.config.epochs,
          batchSize: training.config.batchSize,
          rectifier: training.config.rectifier,
          assignment: training.config.assignment,
          backend: training.backend,
          extractSeconds: training.extractSeconds,
          trainSeconds: training.trainSeconds,
          totalSeconds: training.totalSeconds,
          history: training.history,
        }
      : null,
    perCrop: crops.map((c, i) => ({
      crop: c.name,
      vaePsnr: round(vaePsnr[i]),
      tokenizerPsnr: round(tokPsnr[i]),
    })),
  };
  writeFileSync(join(out, "EVALUATION.json"), `${JSON.stringify(evaluation, null, 2)}\n`);
  log(
    `held-out: VAE ${evaluation.vae.psnr} dB / ${evaluation.vae.ssim}, tokenizer ${evaluation.tokenizerReconstruction.psnr} dB / ${evaluation.tokenizerReconstruction.ssim}; usage min ${evaluation.usage.min} mean ${evaluation.usage.mean}; ${bits} bits vs PNG ${evaluation.compression.png.bitsPerImage}, JPEG75 ${evaluation.compression.jpeg75.bitsPerImage}, JPEG90 ${evaluation.compression.jpeg90.bitsPerImage}`,
  );
  disposeTokenizer(t);
}

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
