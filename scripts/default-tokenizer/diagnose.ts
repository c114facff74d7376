/**
 * Why a tokenizer's rectifier helps or not in pixels (docs/default-tokenizer.md, "Diagnosis"): on
 * the default VAE's held-out grid crops, per latent channel, the latent's spread (std), the
 * quantized and rectified latents' error in normalised and in de-normalised units, and the VAE
 * decoder's sensitivity to noise in that channel; and the decoder's robustness to noise in every
 * channel at once. Prints a table and writes JSON.
 *
 *   node scripts/default-tokenizer/diagnose.ts [--tokenizer models/default-tokenizer] [--json out.json]
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "@revq/shared";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import type { Tokenizer } from "../../gpu-worker/src/pipeline/tokenizer.ts";
import { withTokenizerFolder } from "../../gpu-worker/src/pipeline/tokenizer-folder.ts";
import { psnr } from "../../gpu-worker/src/train/image-metrics.ts";
import { CROP, photoFiles } from "../default-vae/photos.ts";
import { heldOutCrops } from "./evaluate.ts";
import { latentMse, quantizeLatents, rectifyChw, smoothPart } from "./latent-errors.ts";

const SIZE = { height: CROP, width: CROP };
/** Normalised noise std of the per-channel sensitivity probe. */
const PROBE_SIGMA = 0.1;
/** Fraction of an error the linearized probe steps along. */
const LINEAR_STEP = 0.05;
const NOISE_LEVELS = [0.05, 0.1, 0.14, 0.2, 0.3];

const { values: args } = parseArgs({
  options: {
    tokenizer: { type: "string", default: "models/default-tokenizer" },
    photos: { type: "string", default: ".revq/cache/photos" },
    json: { type: "string" },
  },
});
await selectBackend("wasm");
const report = await withTokenizerFolder(String(args.tokenizer), (t) =>
  diagnose(t, String(args.photos)),
);
if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);

async function diagnose(t: Tokenizer, photos: string) {
  const { images, count: n } = await heldOutCrops(photoFiles(join(photos, "heldout")));
  const { channels: c, height: h, width: w } = t.manifest.vae.latentShape;
  const plane = h * w;
  const dims = c * plane;
  const { x, q } = quantizeLatents(t, await t.vae.encode(images, n), n);
  const r = t.rectifier ? rectifyChw(t, t.rectifier, q, n) : q;
  const decode = (normalised: Float32Array) =>
    t.vae.decode(
      Float32Array.from(normalised, (v, k) => v * t.std[k % dims] + t.mean[k % dims]),
      n,
    );
  const reference = await decode(x);
  const pixelMse = (out: Float32Array) => {
    let s = 0;
    for (let k = 0; k < out.length; k++) s += (out[k] - reference[k]) ** 2;
    return s / out.length;
  };
  const meanPsnr = (out: Float32Array) => mean(psnr(out, images, n, SIZE));

  // Per channel: spread, errors, and the decoder's pixel MSE per unit of normalised noise variance.
  const rng = new Rng(17);
  const perChannel: ChannelFigures[] = [];
  for (let ch = 0; ch < c; ch++) {
    let std2 = 0;
    for (let p = 0; p < plane; p++) std2 += t.std[ch * plane + p] ** 2;
    const errors = { q: 0, r: 0, qRaw: 0, rRaw: 0 };
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < plane; p++) {
        const k = i * dims + ch * plane + p;
        const s2 = t.std[ch * plane + p] ** 2;
        const dq = (q[k] - x[k]) ** 2;
        const dr = (r[k] - x[k]) ** 2;
        errors.q += dq;
        errors.r += dr;
        errors.qRaw += dq * s2;
        errors.rRaw += dr * s2;
      }
    }
    const noisy = Float32Array.from(x);
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < plane; p++)
        noisy[i * dims + ch * plane + p] += PROBE_SIGMA * rng.nextNormal();
    }
    const sensitivity = pixelMse(await decode(noisy)) / PROBE_SIGMA ** 2;
    const m = n * plane;
    perChannel.push({
      channel: ch,
      std: Math.sqrt(std2 / plane),
      mseQuantized: errors.q / m,
      mseRectified: errors.r / m,
      rawMseQuantized: errors.qRaw / m,
      rawMseRectified: errors.rRaw / m,
      sensitivity,
    });
  }
  const robustness = [];
  for (const sigma of NOISE_LEVELS) {
    const noisy = Float32Array.from(x, (v) => v + sigma * rng.nextNormal());
    robustness.push({ sigma, latentMse: sigma ** 2, psnr: meanPsnr(await decode(noisy)) });
  }
  // The decoder's linear response to each error (finite difference along it), against the whole.
  const linearized = async (y: Float32Array) => {
    const step = Float32Array.from(x, (v, k) => v + LINEAR_STEP * (y[k] - v));
    return pixelMse(await decode(step)) / LINEAR_STEP ** 2;
  };
  // Each error split into its mean over each image's channel plane (a flat offset) and the rest.
  const flatPart = (y: Float32Array) => {
    const out = Float32Array.from(x);
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const at = i * dims + ch * plane;
        let s = 0;
        for (let p = 0; p < plane; p++) s += y[at + p] - x[at + p];
        for (let p = 0; p < plane; p++) out[at + p] += s / plane;
      }
    }
    return out;
  };
  const split = async (y: Float32Array) => {
    const flat = flatPart(y);
    const rest = Float32Array.from(y, (v, k) => v - flat[k] + x[k]);
    let flatMse = 0;
    for (let k = 0; k < x.length; k++) flatMse += (flat[k] - x[k]) ** 2;
    return {
      flatLatentMse: flatMse / x.length,
      flatPixelMse: await linearized(flat),
      restPixelMse: await linearized(rest),
    };
  };
  // Each error split into its smooth part (a 3×3 box blur of each channel plane) and its detail.
  const bands = async (y: Float32Array) => {
    const smooth = smoothPart(x, y, h, w);
    const detail = Float32Array.from(y, (v, k) => v - smooth[k] + x[k]);
    return {
      smoothLatentMse: latentMse(x, smooth),
      smoothPixelMse: await linearized(smooth),
      detailLatentMse: latentMse(x, detail),
      detailPixelMse: await linearized(detail),
    };
  };
  // Rectified values in one channel, quantized ones elsewhere: does each channel's change help?
  const swaps = [];
  for (let ch = 0; ch < c; ch++) {
    const mixed = Float32Array.from(q);
    for (let i = 0; i < n; i++) {
      const at = i * dims + ch * plane;
      mixed.set(r.subarray(at, at + plane), at);
    }
    swaps.push({ channel: ch, pixelMse: pixelMse(await decode(mixed)) });
  }
  const total = (key: "mseQuantized" | "mseRectified" | "rawMseQuantized" | "rawMseRectified") =>
    mean(perChannel.map((p) => p[key]));
  const predicted = (key: "mseQuantized" | "mseRectified") =>
    perChannel.reduce((s, p) => s + p[key] * p.sensitivity, 0);
  const result = {
    tokenizer: t.manifest.name,
    crops: n,
    psnr: {
      vae: meanPsnr(reference),
      quantized: meanPsnr(await decode(q)),
      rectified: meanPsnr(await decode(r)),
    },
    latentMse: { quantized: total("mseQuantized"), rectified: total("mseRectified") },
    rawLatentMse: { quantized: total("rawMseQuantized"), rectified: total("rawMseRectified") },
    pixelMse: { quantized: pixelMse(await decode(q)), rectified: pixelMse(await decode(r)) },
    /** Σ_c sensitivity_c · mse_c: the decoder's first-order pixel MSE from the latent error. */
    predictedPixelMse: {
      quantized: predicted("mseQuantized"),
      rectified: predicted("mseRectified"),
    },
    linearizedPixelMse: { quantized: await linearized(q), rectified: await linearized(r) },
    flatAndRest: { quantized: await split(q), rectified: await split(r) },
    /** Smooth (3×3 box blur) and detail parts: their latent MSE and linearized pixel MSE. */
    bands: { quantized: await bands(q), rectified: await bands(r) },
    /** Pixel MSE (against the VAE's own) with only channel c rectified. */
    swaps,
    perChannel,
    robustness,
  };
  console.log(JSON.stringify({ ...result, perChannel: undefined, swaps: undefined }, null, 1));
  console.log(
    "ch   std    mse q → r (norm)     mse q → r (raw)      sensitivity   pixel mse, this channel rectified",
  );
  for (const p of perChannel) {
    console.log(
      `${p.channel}  ${p.std.toFixed(3)}  ${p.mseQuantized.toFixed(4)} → ${p.mseRectified.toFixed(4)}   ${p.rawMseQuantized.toFixed(5)} → ${p.rawMseRectified.toFixed(5)}   ${p.sensitivity.toFixed(4)}   ${swaps[p.channel].pixelMse.toExponential(3)}`,
    );
  }
  return result;
}

type ChannelFigures = {
  channel: number;
  std: number;
  mseQuantized: number;
  mseRectified: number;
  rawMseQuantized: number;
  rawMseRectified: number;
  sensitivity: number;
};

function mean(values: ArrayLike<number>): number {
  return Array.from(values).reduce((a, b) => a + b, 0) / values.length;
}
