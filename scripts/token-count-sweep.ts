/**
 * The paper's trend on our stack (docs/token-count-sweep.md): tokenizers trained on the default
 * VAE's latents (the crops and latents train:default-tokenizer cached) at several token counts at
 * the same bits per token, at several codebook sizes, and with one shared codebook against one
 * per token position at equal bits. For each: held-out latent MSE before and after the rectifier
 * (the paper's Figure 9 claim: the rectifier lowers it at every token count), PSNR/SSIM of
 * reconstructions from tokens with and without the rectifier on the default VAE's held-out grid
 * crops, code usage on held-out crops, bits per image. Writes the figures as JSON and plots them
 * (Vega-Lite, rendered to SVG in Node).
 *
 *   npm run sweep:token-count [-- --quick] [--latents N] [--epochs N] [--only ID,ID] [--plot-only]
 *
 * Each variant's result is kept in <work>/sweep/<variant>/result.json with the parameters it was
 * trained with: a sweep that stops goes on where it was when started again.
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { canonicalJson, defaultHeldOut, latentSize } from "@revq/shared";
import { isBackendChoice, selectBackend } from "../gpu-worker/src/backend.ts";
import { loadVae } from "../gpu-worker/src/models/load-vae.ts";
import { safetensorsSource } from "../gpu-worker/src/models/sources.ts";
import { withTokenizerFolder } from "../gpu-worker/src/pipeline/tokenizer-folder.ts";
import { subset } from "../gpu-worker/src/train/dataset.ts";
import { exportTokenizer } from "../gpu-worker/src/train/export.ts";
import { prepareTrainData } from "../gpu-worker/src/train/prepare.ts";
import { disposeRun, startRun, train } from "../gpu-worker/src/train/run.ts";
import { writeCrops } from "./default-tokenizer/crops.ts";
import { codeUsage, heldOutCrops, reconstructionQuality } from "./default-tokenizer/evaluate.ts";
import { DEFAULT_TOKENIZER as D, DEFAULT_WORK } from "./default-tokenizer/settings.ts";
import { photoFiles } from "./default-vae/photos.ts";
import { renderSweepSvg, type SweepResult, type SweepRow } from "./token-count-sweep/plot.ts";
import {
  cropLatents,
  type RunSizes,
  readFrozenVae,
  trainConfig,
  writeTokenizerFolder,
} from "./train-default-tokenizer.ts";

/** What each variant changes from the default tokenizer, and which comparison it belongs to. */
type Variant = Pick<SweepRow, "id" | "series" | "tokens" | "groups" | "codes">;

const VARIANTS: Variant[] = [
  // Token counts at 12 bits a token: codeDim 8, 4, 2 of the latent's 2048 values.
  { id: "T256-K4096", series: "tokens", tokens: 256, groups: 1, codes: 4096 },
  { id: "T512-K4096", series: "tokens", tokens: 512, groups: 1, codes: 4096 },
  { id: "T1024-K4096", series: "tokens", tokens: 1024, groups: 1, codes: 4096 },
  // The paper's per-position codebooks (G = T) against one shared codebook at equal bits.
  { id: "T512-K256", series: "codes", tokens: 512, groups: 1, codes: 256 },
  { id: "T512-K256-G512", series: "groups", tokens: 512, groups: 512, codes: 256 },
  // One more codebook size at 512 tokens.
  { id: "T512-K1024", series: "codes", tokens: 512, groups: 1, codes: 1024 },
];

const QUICK = { latents: 320, epochs: 1, usageCrops: 64 };
const FULL = { latents: 1024, epochs: 4, usageCrops: 256 };
/** The paper's loss (the trend is the method's own), at a learning rate for a run of few steps. */
const LOSS_WEIGHTING = "uniform";
const RECTIFIER_LR = 0.004;

async function main(): Promise<void> {
  const o = parseOptions();
  if (o.plotOnly) {
    await writePlot(o.svg, JSON.parse(readFileSync(o.json, "utf8")));
    return;
  }
  const selection = await selectBackend(o.backend);
  log(`backend: ${selection.reason}`);
  const frozen = await readFrozenVae(o.vae);
  const cropDir = join(o.work, "crops", `${D.seed}-${D.crops}`);
  await writeCrops(o.photos, cropDir, D.crops, D.seed, log);
  const vae = await loadVae(frozen.spec, safetensorsSource(frozen.weights));
  const all = await cropLatents(o.work, frozen.spec, vae, cropDir);
  const latents = subset(
    all.latents,
    Array.from({ length: Math.min(o.latents, all.latents.count) }, (_, i) => i),
  );
  const data = await prepareTrainData(latents, {
    heldOut: defaultHeldOut(latents.count),
    seed: D.seed,
  });
  const heldoutFiles = photoFiles(join(o.photos, "heldout"));
  const crops = await heldOutCrops(heldoutFiles);
  const rows: SweepRow[] = [];
  // Written after every variant: a sweep cut short still leaves what it measured.
  const writeResults = async () => {
    const result: SweepResult = {
      description:
        "Tokenizers on the default VAE's latents (scripts/token-count-sweep.ts): held-out latent MSE (normalised) before and after the rectifier, PSNR/SSIM on the default VAE's held-out grid crops from tokens with the rectifier and with the codebook alone, usage on seeded random held-out crops",
      quick: o.quick,
      latents: latents.count,
      heldOutLatents: data.heldOut.count,
      epochs: o.epochs,
      batchSize: D.batchSize,
      rectifier: { ...D.rectifier, lr: RECTIFIER_LR, lossWeighting: LOSS_WEIGHTING },
      heldOutCrops: crops.count,
      usageCrops: o.usageCrops,
      backend: selection.backend,
      rows,
    };
    mkdirSync(dirname(o.json), { recursive: true });
    writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${o.json}`);
    await writePlot(o.svg, result);
  };
  for (const variant of o.variants) {
    const sizes: RunSizes = {
      tokens: variant.tokens,
      groups: variant.groups,
      codes: variant.codes,
      epochs: o.epochs,
      batchSize: D.batchSize,
      seed: D.seed,
      assignment: "exact",
      rectifierLr: RECTIFIER_LR,
      rectifierLossWeighting: LOSS_WEIGHTING,
      channels: D.rectifier.channels,
      blocks: D.rectifier.blocks,
      headDim: D.rectifier.headDim,
    };
    const config = trainConfig(sizes, frozen.spec);
    const dir = join(o.work, o.quick ? "sweep-quick" : "sweep", variant.id);
    const key = canonicalJson({ config, latents: latents.count, usageCrops: o.usageCrops });
    const kept = join(dir, "result.json");
    if (existsSync(kept)) {
      const previous = JSON.parse(readFileSync(kept, "utf8"));
      if (previous.key === key) {
        log(`${variant.id}: kept`);
        rows.push(previous.row);
        await writeResults();
        continue;
      }
    }
    log(`${variant.id}: training ${JSON.stringify(config)}`);
    const run = await startRun(config, data);
    await train(run, data, {
      onEpoch: (e) =>
        log(
          `${variant.id} epoch ${e.epoch + 1}/${config.epochs}: val mse ${e.validation?.latentMse.toFixed(4)} → ${e.validation?.rectifiedMse.toFixed(4)}, usage ${e.usageMean.toFixed(3)}, ${e.seconds.toFixed(0)} s`,
        ),
    });
    const { weights: _, ...vaeBare } = frozen.spec;
    const tokenizer = await exportTokenizer(run, data.normalizer, {
      name: `revq-sweep-${variant.id}`,
      vae: vaeBare,
      vaeWeights: frozen.weights,
      dataset: { name: "revq-default-vae-train-crops", images: latents.count },
    });
    const history = run.history;
    disposeRun(run);
    writeTokenizerFolder(join(dir, "tokenizer"), tokenizer);
    const row = await withTokenizerFolder(join(dir, "tokenizer"), async (t) => {
      const quality = await reconstructionQuality(t, crops.images, crops.count);
      const usage = await codeUsage(t, heldoutFiles, o.usageCrops, D.seed + 1);
      const last = history.at(-1)?.validation;
      if (!last) throw new Error("the sweep holds latents out: every epoch has a validation");
      const bitsPerToken = Math.ceil(Math.log2(variant.codes));
      return {
        ...variant,
        codeDim: latentSize(frozen.spec.latentShape) / variant.tokens,
        bitsPerToken,
        bitsPerImage: variant.tokens * bitsPerToken,
        heldOutLatents: last.latents,
        latentMse: { quantized: last.latentMse, rectified: last.rectifiedMse },
        psnr: {
          vae: mean(quality.vaePsnr),
          tokens: mean(quality.tokenizerPsnr),
          codebookAlone: mean(quality.plainPsnr),
        },
        ssim: {
          vae: mean(quality.vaeSsim),
          tokens: mean(quality.tokenizerSsim),
          codebookAlone: mean(quality.plainSsim),
        },
        usage: { min: Math.min(...usage), mean: mean(usage) },
        trainSeconds: history.reduce((s, e) => s + e.seconds, 0),
      } satisfies SweepRow;
    });
    mkdirSync(dir, { recursive: true });
    writeFileSync(kept, `${JSON.stringify({ key, row }, null, 2)}\n`);
    log(
      `${variant.id}: latent ${row.latentMse.quantized.toFixed(4)} → ${row.latentMse.rectified.toFixed(4)}, PSNR ${row.psnr.codebookAlone.toFixed(2)} → ${row.psnr.tokens.toFixed(2)} (VAE ${row.psnr.vae.toFixed(2)}), usage ${row.usage.mean.toFixed(3)}`,
    );
    rows.push(row);
    await writeResults();
  }
}

function parseOptions() {
  const { values: args } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      latents: { type: "string" },
      epochs: { type: "string" },
      "usage-crops": { type: "string" },
      backend: { type: "string", default: "wasm" },
      photos: { type: "string", default: ".revq/cache/photos" },
      vae: { type: "string", default: "models/default-vae" },
      work: { type: "string", default: DEFAULT_WORK },
      json: { type: "string" },
      svg: { type: "string" },
      "plot-only": { type: "boolean", default: false },
      only: { type: "string" },
    },
  });
  const quick = Boolean(args.quick);
  const base = quick ? QUICK : FULL;
  const int = (name: "latents" | "epochs" | "usage-crops", fallback: number) => {
    if (args[name] === undefined) return fallback;
    const v = Number(args[name]);
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
    return v;
  };
  const backend = String(args.backend);
  if (!isBackendChoice(backend)) throw new Error(`--backend ${backend} is not a backend`);
  const work = resolve(String(args.work));
  return {
    quick,
    latents: int("latents", base.latents),
    epochs: int("epochs", base.epochs),
    usageCrops: int("usage-crops", base.usageCrops),
    backend,
    photos: String(args.photos),
    vae: String(args.vae),
    work,
    // A quick sweep's figures stay beside its cache, away from the recorded ones.
    json: resolve(
      args.json ??
        (quick ? join(work, "sweep-quick.json") : "bench/results/token-count-sweep.json"),
    ),
    svg: resolve(
      args.svg ?? (quick ? join(work, "sweep-quick.svg") : "docs/token-count-sweep.svg"),
    ),
    plotOnly: Boolean(args["plot-only"]),
    variants: args.only ? pickVariants(String(args.only).split(",")) : VARIANTS,
  };
}

async function writePlot(svg: string, result: SweepResult): Promise<void> {
  mkdirSync(dirname(svg), { recursive: true });
  writeFileSync(svg, await renderSweepSvg(result));
  log(`wrote ${svg}`);
}

/** The variants named (by id), in the sweep's order; an unknown id is an error. */
function pickVariants(ids: string[]): Variant[] {
  const unknown = ids.filter((id) => !VARIANTS.some((v) => v.id === id));
  if (unknown.length > 0) {
    throw new Error(
      `--only: no variant ${unknown.join(", ")} (${VARIANTS.map((v) => v.id).join(", ")})`,
    );
  }
  return VARIANTS.filter((v) => ids.includes(v.id));
}

function mean(values: ArrayLike<number>): number {
  return Array.from(values).reduce((a, b) => a + b, 0) / values.length;
}

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

await main();
