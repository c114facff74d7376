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
 *    With --codebook-from <tokenizer folder>, the run starts from that tokenizer's codebook and
 *    keeps it as it is (quantizer lr 0, no reset): a rectifier trained alone on it, e.g. with the
 *    decoder loss, which costs too much to run for the codebook's whole training on a CPU.
 * 3. Evaluation on the VAE's held-out crops (its manifest's grid crops of the held-out photos):
 *    PSNR/SSIM of the VAE alone and of the tokenizer (tokens → codebook → rectifier →
 *    de-normalise → VAE decoder), codebook usage per group on seeded random crops of the
 *    held-out photos, and bits per image against PNG and JPEG of the same crops
 *    (default-tokenizer/evaluate.ts).
 */

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  type Codebook,
  canonicalJson,
  createCodebook,
  defaultHeldOut,
  sha256Hex,
} from "@revq/shared";
import { type BackendChoice, isBackendChoice, selectBackend } from "../gpu-worker/src/backend.ts";
import { loadVae } from "../gpu-worker/src/models/load-vae.ts";
import { safetensorsSource } from "../gpu-worker/src/models/sources.ts";
import type { Vae, VaeSpec } from "../gpu-worker/src/models/vae.ts";
import { withTokenizerFolder } from "../gpu-worker/src/pipeline/tokenizer-folder.ts";
import { loadCheckpoint, saveCheckpoint } from "../gpu-worker/src/train/checkpoint.ts";
import { imageFolder } from "../gpu-worker/src/train/cli-images.ts";
import { resolveTrainConfig, type TrainConfig } from "../gpu-worker/src/train/config.ts";
import type { Normalizer } from "../gpu-worker/src/train/dataset.ts";
import { type ExportedTokenizer, exportTokenizer } from "../gpu-worker/src/train/export.ts";
import { extractLatents } from "../gpu-worker/src/train/extract.ts";
import { folderStore } from "../gpu-worker/src/train/folder-store.ts";
import { prepareTrainData } from "../gpu-worker/src/train/prepare.ts";
import {
  disposeRun,
  type EpochRecord,
  startRun,
  type TrainData,
  type TrainRun,
  train,
} from "../gpu-worker/src/train/run.ts";
import { writeCrops } from "./default-tokenizer/crops.ts";
import { evaluateTokenizerFolder } from "./default-tokenizer/evaluate.ts";
import { DEFAULT_TOKENIZER as D, DEFAULT_WORK } from "./default-tokenizer/settings.ts";
import { TRAIN_SCALES } from "./default-vae/photos.ts";

type Options = ReturnType<typeof parseOptions>;

/** What a run of the default tokenizer's kind is trained with (the sweep varies the sizes). */
export type RunSizes = Pick<
  Options,
  | "tokens"
  | "groups"
  | "codes"
  | "epochs"
  | "batchSize"
  | "seed"
  | "assignment"
  | "rectifierLr"
  | "rectifierLossWeighting"
  | "channels"
  | "blocks"
  | "headDim"
> & { residual?: boolean; rectifierLoss?: string };

/** The frozen VAE: its manifest entry and its weights, checked against the entry's SHA-256. */
export type FrozenVae = { spec: VaeSpec; weights: Uint8Array };

async function main(): Promise<void> {
  const options = parseOptions();
  const selection = await selectBackend(options.backend);
  log(`backend: ${selection.reason}`);
  const frozen = await readFrozenVae(options.vae);
  if (!options.evalOnly) await trainDefaultTokenizer(options, frozen, selection.backend);
  await evaluateTokenizerFolder(
    {
      out: options.out,
      photos: options.photos,
      vaeDir: options.vae,
      work: options.work,
      usageCrops: options.usageCrops,
      seed: options.seed,
    },
    log,
  );
}

function parseOptions() {
  const { values: args } = parseArgs({
    options: {
      crops: { type: "string", default: String(D.crops) },
      codes: { type: "string", default: String(D.codes) },
      tokens: { type: "string", default: String(D.tokens) },
      groups: { type: "string", default: String(D.groups) },
      epochs: { type: "string", default: String(D.epochs) },
      "batch-size": { type: "string", default: String(D.batchSize) },
      channels: { type: "string", default: String(D.rectifier.channels) },
      blocks: { type: "string", default: String(D.rectifier.blocks) },
      "head-dim": { type: "string", default: String(D.rectifier.headDim) },
      residual: { type: "boolean", default: D.rectifier.residual, allowNegative: true },
      assignment: { type: "string", default: "exact" },
      "rectifier-lr": { type: "string", default: String(D.rectifierLr) },
      "rectifier-loss-weighting": { type: "string", default: D.rectifierLossWeighting },
      "rectifier-loss": { type: "string", default: D.rectifierLoss },
      "usage-crops": { type: "string", default: "2048" },
      seed: { type: "string", default: String(D.seed) },
      backend: { type: "string", default: "wasm" },
      photos: { type: "string", default: ".revq/cache/photos" },
      vae: { type: "string", default: "models/default-vae" },
      work: { type: "string", default: DEFAULT_WORK },
      out: { type: "string", default: "models/default-tokenizer" },
      "eval-only": { type: "boolean", default: false },
      "codebook-from": { type: "string" },
    },
  });
  const int = (name: keyof typeof args) => {
    const v = Number(args[name]);
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
    return v;
  };
  const backend = String(args.backend);
  if (!isBackendChoice(backend)) throw new Error(`--backend ${backend} is not a backend`);
  return {
    backend: backend as BackendChoice,
    seed: int("seed"),
    crops: int("crops"),
    tokens: int("tokens"),
    groups: int("groups"),
    codes: int("codes"),
    epochs: int("epochs"),
    batchSize: int("batch-size"),
    channels: int("channels"),
    blocks: int("blocks"),
    headDim: int("head-dim"),
    residual: Boolean(args.residual),
    assignment: args.assignment,
    rectifierLr: Number(args["rectifier-lr"]),
    rectifierLossWeighting: args["rectifier-loss-weighting"],
    rectifierLoss: args["rectifier-loss"],
    usageCrops: int("usage-crops"),
    photos: String(args.photos),
    vae: String(args.vae),
    work: resolve(String(args.work)),
    out: resolve(String(args.out)),
    evalOnly: Boolean(args["eval-only"]),
    codebookFrom: args["codebook-from"] ? resolve(String(args["codebook-from"])) : undefined,
  };
}

/** The frozen VAE, pinned by its manifest's SHA-256. */
export async function readFrozenVae(vaeDir: string): Promise<FrozenVae> {
  const vaeManifest = JSON.parse(readFileSync(join(vaeDir, "manifest.json"), "utf8"));
  const spec = vaeManifest.vae as VaeSpec;
  if (!spec.weights) throw new Error(`${vaeDir}'s manifest names no weights`);
  const weights = new Uint8Array(readFileSync(join(vaeDir, spec.weights.path)));
  if ((await sha256Hex(weights)) !== spec.weights.sha256) {
    throw new Error(`${vaeDir}/${spec.weights.path} does not match its manifest's SHA-256`);
  }
  return { spec, weights };
}

/** Steps 1 and 2: crops, latents, training (resumable), the tokenizer folder, training.json. */
async function trainDefaultTokenizer(
  options: Options,
  frozen: FrozenVae,
  backend: string,
): Promise<void> {
  const started = performance.now();
  const cropDir = join(options.work, "crops", `${options.seed}-${options.crops}`);
  await writeCrops(options.photos, cropDir, options.crops, options.seed, log);
  const vae = await loadVae(frozen.spec, safetensorsSource(frozen.weights));
  const { latents, images, datasetId, extractSeconds } = await cropLatents(
    options.work,
    frozen.spec,
    vae,
    cropDir,
  );
  const data = await prepareTrainData(latents, {
    heldOut: defaultHeldOut(latents.count),
    seed: options.seed,
    vae,
    images: { source: images, count: 16 },
  });
  const from = options.codebookFrom
    ? await trainedCodebook(options.codebookFrom, data.normalizer)
    : undefined;
  const sized = trainConfig(options, frozen.spec);
  const config: TrainConfig = from
    ? {
        ...sized,
        learningRates: { ...sized.learningRates, quantizer: 0 },
        reset: { ...sized.reset, ratio: 0 },
      }
    : sized;
  // A rectifier stage keeps its own checkpoints: the codebook's run stays resumable.
  const checkpointDir = join(options.work, from ? "checkpoints-rectifier-stage" : "checkpoints");
  const run = await resumeOrStart(checkpointDir, datasetId, config, data, from?.codebook);
  log(
    `${latents.count} latents (${data.train.length} train, ${data.heldOut.count} held out), ${JSON.stringify(config)}`,
  );
  await train(run, data, {
    onEpoch: async (e, current) => {
      log(epochLine(e, config.epochs));
      await saveCheckpoint(folderStore(checkpointDir), current, datasetId);
    },
  });
  const tokenizer = await exportDefaultTokenizer(run, data, frozen, options, from?.hash);
  writeTokenizerFolder(options.out, tokenizer);
  const trainSeconds = run.history.reduce((s, e) => s + e.seconds, 0);
  const last = run.history.at(-1);
  writeFileSync(
    join(options.work, "training.json"),
    JSON.stringify(
      {
        hash: tokenizer.hash,
        crops: options.crops,
        seed: options.seed,
        config,
        ...(from ? { codebookFrom: { tokenizer: from.hash, training: from.training } } : {}),
        extractSeconds: Math.round(extractSeconds),
        trainSeconds: Math.round(trainSeconds),
        totalSeconds: Math.round((performance.now() - started) / 1000),
        backend,
        lastEpoch: last,
        history: run.history.map((e) => ({
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
  log(`wrote ${options.out} (${tokenizer.hash}), ${trainSeconds.toFixed(0)} s training`);
  disposeRun(run);
  vae.dispose();
}

/** The crops' latents under the frozen VAE, extracted once into <work>/latents/ (kept). */
export async function cropLatents(work: string, spec: VaeSpec, vae: Vae, cropDir: string) {
  const images = await imageFolder(cropDir, spec.inputResolution);
  const vaeId = await sha256Hex(canonicalJson(spec));
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
  return { latents, images, datasetId, extractSeconds: (performance.now() - t0) / 1000 };
}

/** The training parameters: the small preset with the command line's sizes. */
export function trainConfig(options: RunSizes, spec: VaeSpec): TrainConfig {
  return resolveTrainConfig(
    {
      preset: "small",
      tokens: options.tokens,
      groups: options.groups,
      codes: options.codes,
      epochs: options.epochs,
      batchSize: options.batchSize,
      seed: options.seed,
      assignment: options.assignment,
      learningRates: { rectifier: options.rectifierLr },
      rectifierLossWeighting: options.rectifierLossWeighting,
      rectifierLoss: options.rectifierLoss,
      rectifier: {
        channels: options.channels,
        blocks: options.blocks,
        headDim: options.headDim,
        multiscales: [...D.rectifier.multiscales],
        residual: options.residual,
      },
    },
    spec.latentShape,
    false,
  );
}

/** The run checkpointed in `dir` when it has these parameters, else a new one. */
async function resumeOrStart(
  dir: string,
  datasetId: string,
  config: TrainConfig,
  data: TrainData,
  codebook?: Codebook,
): Promise<TrainRun> {
  let run: TrainRun | null = await loadCheckpoint(folderStore(dir), datasetId).catch(() => null);
  if (run && canonicalJson(run.config) !== canonicalJson(config)) {
    log("the checkpoint is of other parameters: starting over");
    disposeRun(run);
    run = null;
  }
  if (run) log(`resuming after epoch ${run.epoch}/${config.epochs}`);
  else rmSync(dir, { recursive: true, force: true });
  return run ?? (await startRun(config, data, codebook));
}

/**
 * The codebook of the tokenizer in `dir`, which must have been trained on these latents (its
 * statistics are the training split's, value for value), and its run as its EVALUATION.json has it.
 */
async function trainedCodebook(dir: string, normalizer: Normalizer) {
  return withTokenizerFolder(dir, async (t) => {
    const same = (a: Float32Array, b: Float32Array) =>
      a.length === b.length && a.every((v, i) => v === b[i]);
    if (!same(t.mean, normalizer.mean) || !same(t.std, normalizer.std)) {
      throw new Error(`${dir} was trained on other latents: its statistics are not these crops'`);
    }
    const { groups, codes, dim, data } = t.codebook;
    log(`codebook from ${dir} (${t.ref.manifestHash}), kept as it is`);
    const evaluation = join(dir, "EVALUATION.json");
    return {
      hash: t.ref.manifestHash,
      codebook: createCodebook(groups, codes, dim, data.slice()),
      training: existsSync(evaluation)
        ? JSON.parse(readFileSync(evaluation, "utf8")).training
        : null,
    };
  });
}

function epochLine(e: EpochRecord, epochs: number): string {
  const v = e.validation;
  return (
    `epoch ${e.epoch + 1}/${epochs}: loss q ${e.lossQuantizer.toFixed(4)} r ${e.lossRectifier.toFixed(4)}, usage min ${e.usageMin.toFixed(3)} mean ${e.usageMean.toFixed(3)}, replaced ${e.replacedCodes}` +
    (v
      ? `, val mse ${v.latentMse.toFixed(4)} → ${v.rectifiedMse.toFixed(4)}, PSNR ${v.psnr?.toFixed(2)} (VAE ${v.vaePsnr?.toFixed(2)}), SSIM ${v.ssim?.toFixed(3)}`
      : "") +
    `, ${e.seconds.toFixed(0)} s`
  );
}

/** The trained run as a tokenizer that ships the frozen VAE's weights. */
function exportDefaultTokenizer(
  run: TrainRun,
  data: TrainData,
  frozen: FrozenVae,
  options: Options,
  codebookFrom?: string,
): Promise<ExportedTokenizer> {
  const { weights: _, ...vaeBare } = frozen.spec;
  return exportTokenizer(run, data.normalizer, {
    name: "revq-default-tokenizer",
    description:
      "The tokenizer revq ships by default: ReVQ on the repository's default VAE (models/default-vae, frozen), trained on seeded 64×64 crops of the training photos." +
      (codebookFrom
        ? ` Its rectifier was then trained alone on that run's codebook, kept as it was (tokenizer ${codebookFrom}): the training block is this rectifier's run, EVALUATION.json has both.`
        : "") +
      " See docs/default-tokenizer.md and EVALUATION.json.",
    vae: vaeBare,
    vaeWeights: frozen.weights,
    dataset: {
      name: "revq-default-vae-train-crops",
      images: data.latents.count,
      description: `${options.crops} seeded (seed ${options.seed}) random 64×64 crops of the default VAE's training photos (scripts/default-vae/photos.ts, scales ${TRAIN_SCALES.join(", ")})`,
    },
  });
}

/** The tokenizer's files and manifest into `out`, replacing what was there. */
export function writeTokenizerFolder(out: string, tokenizer: ExportedTokenizer): void {
  rmSync(out, { recursive: true, force: true });
  for (const [path, bytes] of tokenizer.files) {
    mkdirSync(dirname(join(out, path)), { recursive: true });
    writeFileSync(join(out, path), bytes);
  }
  writeFileSync(join(out, "manifest.json"), tokenizer.manifestBytes);
}

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
