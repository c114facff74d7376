/**
 * Small, fast experiments on the rectifier alone (docs/default-tokenizer.md, "Diagnosis"): the
 * shipped tokenizer's codebook stays frozen, the training crops' latents are quantized once, and
 * rectifiers of several sizes, learning rates, step counts and loss weightings are trained on those
 * pairs (ReVQ's loss, mse(z, rectifier(q)), or its per-dimension weighting) and scored on the
 * default VAE's held-out grid crops: latent MSE, its flat (per image and channel) part, and PSNR.
 *
 *   node scripts/default-tokenizer/rectifier-experiments.ts [--latents 1024] [--only <name part>]
 *     [--epochs <each variant's>] [--json out.json]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { canonicalJson, type RectifierLossWeighting, Rng, sha256Hex } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import {
  disposeRectifier,
  initRectifier,
  loadRectifier,
  type Rectifier,
  type RectifierConfig,
  rectify,
} from "../../gpu-worker/src/models/rectifier.ts";
import { parseSmallVaeConfig } from "../../gpu-worker/src/models/small-vae/config.ts";
import {
  decode as decodeSmallVae,
  disposeSmallVae,
  loadSmallVae,
} from "../../gpu-worker/src/models/small-vae/model.ts";
import { safetensorsSource } from "../../gpu-worker/src/models/sources.ts";
import type { Tokenizer } from "../../gpu-worker/src/pipeline/tokenizer.ts";
import { withTokenizerFolder } from "../../gpu-worker/src/pipeline/tokenizer-folder.ts";
import { adamwStep, createAdamW, disposeAdamW } from "../../gpu-worker/src/train/adamw.ts";
import { imageFolder } from "../../gpu-worker/src/train/cli-images.ts";
import { gatherLatents, shuffledOrder } from "../../gpu-worker/src/train/dataset.ts";
import { extractLatents } from "../../gpu-worker/src/train/extract.ts";
import { folderStore } from "../../gpu-worker/src/train/folder-store.ts";
import { psnr, ssim } from "../../gpu-worker/src/train/image-metrics.ts";
import { rectifierLossWeights } from "../../gpu-worker/src/train/loss-weights.ts";
import { learningRateAt } from "../../gpu-worker/src/train/schedule.ts";
import { MAX_GRAD_NORM, toNhwc } from "../../gpu-worker/src/train/step.ts";
import { CROP, photoFiles } from "../default-vae/photos.ts";
import { heldOutCrops } from "./evaluate.ts";
import { latentMse, quantizeLatents, rectifyChw, smoothPart } from "./latent-errors.ts";
import { DEFAULT_TOKENIZER as D, DEFAULT_WORK } from "./settings.ts";

type Variant = {
  name: string;
  channels: number;
  blocks: number;
  lr: number;
  epochs: number;
  /** "shipped": go on from the shipped tokenizer's rectifier (then its sizes). */
  from: "scratch" | "shipped";
  /** The trainer's rectifierLossWeighting (gpu-worker/src/train/loss-weights.ts). */
  weighting: RectifierLossWeighting;
  /** A residual rectifier (gpu-worker/src/models/rectifier.ts), from scratch only. */
  residual?: true;
  /**
   * "pixels": the squared error of the frozen VAE decoder's images against its images of the true
   * latents, not of the latents; "image": against the crops themselves.
   */
  loss?: "pixels" | "image";
};

/** A rectifier of the shipped size from scratch, ReVQ's loss, 8 epochs at lr 0.002, but for `v`. */
const variant = (name: string, v: Partial<Omit<Variant, "name">> = {}): Variant => ({
  name,
  from: "scratch",
  channels: 16,
  blocks: 1,
  lr: 0.002,
  epochs: 8,
  weighting: "uniform",
  ...v,
});
const residual = { residual: true } as const;
const wide = { channels: 32, blocks: 2, lr: 0.004 };
const pixels = { ...residual, loss: "pixels", epochs: 4 } as const;
const image = { ...residual, loss: "image", epochs: 4 } as const;

const VARIANTS: Variant[] = [
  variant("scratch residual 16 ch", residual),
  variant("scratch residual 16 ch latent-variance", { ...residual, weighting: "latent-variance" }),
  variant("scratch residual 16 ch pixel loss", pixels),
  variant("scratch residual 16 ch pixel loss lr 0.01", { ...pixels, lr: 0.01 }),
  variant("scratch residual 32 ch 2 blocks pixel loss lr 0.004", { ...pixels, ...wide }),
  variant("scratch residual 16 ch image loss lr 0.01", { ...image, lr: 0.01 }),
  variant("scratch residual 32 ch 2 blocks image loss lr 0.004", { ...image, ...wide }),
  variant("scratch residual 32 ch 2 blocks lr 0.004", { ...residual, ...wide }),
  variant("scratch 16 ch"),
  variant("scratch 32 ch 2 blocks lr 0.004", { ...wide, epochs: 24 }),
  variant("scratch 64 ch 2 blocks lr 0.004", { ...wide, channels: 64, epochs: 24 }),
  variant("shipped + plain lr 0.0005", { from: "shipped", lr: 0.0005, epochs: 4 }),
  variant("shipped + latent-variance lr 0.0005", {
    from: "shipped",
    lr: 0.0005,
    epochs: 4,
    weighting: "latent-variance",
  }),
  variant("shipped + plain lr 0.002", { from: "shipped", epochs: 4 }),
];

/**
 * The pixel loss (about 6e-4) times this: unscaled, its gradients are near AdamW's eps (1e-8)
 * and the rectifier barely moves.
 */
const PIXEL_LOSS_SCALE = 1000;

const { values: args } = parseArgs({
  options: {
    tokenizer: { type: "string", default: "models/default-tokenizer" },
    photos: { type: "string", default: ".revq/cache/photos" },
    work: { type: "string", default: DEFAULT_WORK },
    latents: { type: "string", default: "1024" },
    vae: { type: "string", default: "models/default-vae" },
    only: { type: "string" },
    /** Overrides each chosen variant's epochs. */
    epochs: { type: "string" },
    json: { type: "string" },
  },
});
await selectBackend("wasm");
const results = await withTokenizerFolder(String(args.tokenizer), async (t) => {
  const pairs = await trainingPairs(t, Number(args.latents));
  const heldOut = await heldOutSet(t);
  const out = [{ name: "codebook alone", ...(await score(t, null, heldOut)) }];
  console.log(JSON.stringify(out[0]));
  const chosen = VARIANTS.filter((v) => !args.only || v.name.includes(String(args.only)));
  for (const v of chosen.map((v) => (args.epochs ? { ...v, epochs: Number(args.epochs) } : v))) {
    const started = performance.now();
    const r = await trainVariant(t, v, pairs);
    const row = {
      ...v,
      seconds: (performance.now() - started) / 1000,
      ...(await score(t, r, heldOut)),
    };
    disposeRectifier(r);
    console.log(JSON.stringify(row));
    out.push(row);
  }
  return out;
});
if (args.json) writeFileSync(String(args.json), `${JSON.stringify(results, null, 2)}\n`);

type Pairs = { count: number; x: Float32Array; q: Float32Array; images?: Float32Array };

/** The first `count` training crops' normalised latents, their quantized versions and pixels. */
async function trainingPairs(t: Tokenizer, count: number): Promise<Pairs> {
  // The latents train-default-tokenizer cached, keyed by the default VAE's own manifest entry.
  const spec = JSON.parse(readFileSync(join(String(args.vae), "manifest.json"), "utf8")).vae;
  const images = await imageFolder(
    join(String(args.work), "crops", `${D.seed}-${D.crops}`),
    spec.inputResolution,
  );
  const vaeId = await sha256Hex(canonicalJson(spec));
  const datasetId = await sha256Hex(`${images.identity}:${vaeId}`);
  const set = await extractLatents(
    images,
    t.vae,
    folderStore(join(String(args.work), "latents", datasetId.slice(0, 16))),
    {
      shardSize: 1024,
      batchSize: 32,
    },
  );
  const raw = gatherLatents(
    set,
    Array.from({ length: count }, (_, i) => i),
  );
  const each = CROP * CROP * 3;
  const pixels = new Float32Array(count * each);
  for (let i = 0; i < count; i++) pixels.set(await images.load(i), i * each);
  return { ...quantizeLatents(t, raw, count), images: pixels };
}

type HeldOut = Pairs & { images: Float32Array; reference: Float32Array };

async function heldOutSet(t: Tokenizer): Promise<HeldOut> {
  const { images, count } = await heldOutCrops(photoFiles(join(String(args.photos), "heldout")));
  const raw = await t.vae.encode(images, count);
  return { ...quantizeLatents(t, raw, count), images, reference: await t.vae.decode(raw, count) };
}

async function trainVariant(t: Tokenizer, v: Variant, pairs: Pairs): Promise<Rectifier> {
  const config: RectifierConfig = {
    latentChannels: t.manifest.vae.latentShape.channels,
    channels: v.channels,
    blocks: v.blocks,
    headDim: D.rectifier.headDim,
    multiscales: [...D.rectifier.multiscales],
    ...(v.residual ? { residual: true } : {}),
  };
  const r =
    v.from === "shipped" && t.rectifier
      ? await loadRectifier(
          t.rectifier.config,
          safetensorsSource(readFileSync(join(String(args.tokenizer), "rectifier.safetensors"))),
          (x) => tf.variable(x),
        )
      : await initRectifier(config, D.seed);
  const variables = r.bindings.map((b) => b.param as tf.Variable);
  const opt = createAdamW([{ params: variables, lr: v.lr, weightDecay: 1e-4 }]);
  const dims = pairs.x.length / pairs.count;
  const shape = t.manifest.vae.latentShape;
  const weights =
    rectifierLossWeights(v.weighting, shape, t) ??
    (tf.ones([1, shape.height, shape.width, shape.channels]) as tf.Tensor4D);
  const decoder = v.loss ? await frozenDecoder(t) : null;
  const decodePixels = (normalised: tf.Tensor4D) => {
    if (!decoder) throw new Error("no decoder");
    return decoder.decode(tf.add(tf.mul(normalised, decoder.std), decoder.mean) as tf.Tensor4D);
  };
  const rng = new Rng(D.seed);
  const batch = D.batchSize;
  for (let epoch = 0; epoch < v.epochs; epoch++) {
    opt.groups[0].lr = learningRateAt(v.lr, epoch, v.epochs);
    const order = shuffledOrder(rng, pairs.count);
    for (let s = 0; s + batch <= pairs.count; s += batch) {
      const idx = Array.from(order.subarray(s, s + batch));
      const take = (a: Float32Array, each = dims) => {
        const out = new Float32Array(batch * each);
        idx.forEach((k, i) => {
          out.set(a.subarray(k * each, (k + 1) * each), i * each);
        });
        return out;
      };
      const [q, x] = tf.tidy(() => [
        toNhwc(
          tf.tensor2d(take(pairs.q), [batch * t.layout.tokens, t.layout.codeDim]),
          shape,
          batch,
        ),
        toNhwc(
          tf.tensor2d(take(pairs.x), [batch * t.layout.tokens, t.layout.codeDim]),
          shape,
          batch,
        ),
      ]);
      const target = () =>
        v.loss === "image" && pairs.images
          ? tf.tensor4d(take(pairs.images, CROP * CROP * 3), [batch, CROP, CROP, 3])
          : decodePixels(x);
      const g = tf.variableGrads(
        () =>
          v.loss
            ? tf.mul(
                tf.mean(tf.squaredDifference(decodePixels(rectify(r, q)), target())),
                PIXEL_LOSS_SCALE,
              )
            : (tf.mean(tf.mul(tf.squaredDifference(rectify(r, q), x), weights)) as tf.Scalar),
        variables,
      );
      const norms = adamwStep(opt, [variables.map((p) => g.grads[p.name])], MAX_GRAD_NORM);
      tf.dispose([q, x, g.value, ...Object.values(g.grads), ...norms]);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  disposeAdamW(opt);
  weights.dispose();
  decoder?.dispose();
  return r;
}

/** The default VAE's decoder as a differentiable function of channels-last latents. */
async function frozenDecoder(t: Tokenizer) {
  const spec = JSON.parse(readFileSync(join(String(args.vae), "manifest.json"), "utf8")).vae;
  const vae = await loadSmallVae(
    parseSmallVaeConfig(spec.config),
    safetensorsSource(readFileSync(join(String(args.vae), spec.weights.path))),
  );
  const { channels: c, height: h, width: w } = t.manifest.vae.latentShape;
  const nhwc = (chw: Float32Array) =>
    tf.transpose(tf.tensor4d(chw, [1, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
  const std = nhwc(t.std);
  const mean = nhwc(t.mean);
  return {
    std,
    mean,
    decode: (z: tf.Tensor4D) => decodeSmallVae(vae, z),
    dispose: () => {
      disposeSmallVae(vae);
      tf.dispose([std, mean]);
    },
  };
}

async function score(t: Tokenizer, r: Rectifier | null, held: HeldOut) {
  const n = held.count;
  const dims = held.x.length / n;
  const shape = t.manifest.vae.latentShape;
  const rect = r ? rectifyChw(t, r, held.q, n) : held.q;
  let mse = 0;
  let flat = 0;
  const plane = shape.height * shape.width;
  for (let i = 0; i < n * shape.channels; i++) {
    let s = 0;
    for (let p = 0; p < plane; p++) {
      const k = i * plane + p;
      mse += (rect[k] - held.x[k]) ** 2;
      s += rect[k] - held.x[k];
    }
    flat += (s / plane) ** 2 * plane;
  }
  const decoded = await t.vae.decode(
    Float32Array.from(rect, (v, k) => v * t.std[k % dims] + t.mean[k % dims]),
    n,
  );
  const size = { height: CROP, width: CROP };
  const { height: h, width: w } = shape;
  return {
    latentMse: mse / rect.length,
    flatLatentMse: flat / rect.length,
    smoothLatentMse: latentMse(held.x, smoothPart(held.x, rect, h, w)),
    psnr: mean(psnr(decoded, held.images, n, size)),
    ssim: mean(ssim(decoded, held.images, n, size)),
  };
}

function mean(values: ArrayLike<number>): number {
  return Array.from(values).reduce((a, b) => a + b, 0) / values.length;
}
