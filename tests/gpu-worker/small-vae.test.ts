import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import type { BackendName } from "../../gpu-worker/src/backend.ts";
import { loadVae } from "../../gpu-worker/src/models/load-vae.ts";
import {
  loadCheckpoint,
  saveCheckpoint,
  saveSmallVae,
} from "../../gpu-worker/src/models/small-vae/checkpoint.ts";
import {
  DEFAULT_SMALL_VAE,
  parseSmallVaeConfig,
  type SmallVaeConfig,
} from "../../gpu-worker/src/models/small-vae/config.ts";
import {
  decode,
  disposeSmallVae,
  encode,
  initSmallVae,
  loadSmallVae,
  type SmallVae,
} from "../../gpu-worker/src/models/small-vae/model.ts";
import { createAdam, disposeAdam, trainStep } from "../../gpu-worker/src/models/small-vae/train.ts";
import { safetensorsSource } from "../../gpu-worker/src/models/sources.ts";
import type { VaeSpec } from "../../gpu-worker/src/models/vae.ts";
import { psnr } from "../../gpu-worker/src/train/image-metrics.ts";
import { download, runOn, scaledError, values } from "./helpers/backends.ts";
import { readCropStrip } from "./helpers/crop-strip.ts";

/** Two stages, as the shipped model, at a size that runs in milliseconds. */
const TINY: SmallVaeConfig = {
  latentChannels: 4,
  channels: [8, 16],
  encoderLayers: [1, 1],
  decoderLayers: [1, 2],
};

async function reconstruct(vae: SmallVae, images: tf.Tensor4D) {
  const [z, y] = tf.tidy(() => {
    const latent = encode(vae, images);
    return [latent, decode(vae, latent)];
  });
  const shapes = { latent: z.shape, image: y.shape };
  const [latent, image] = await download([z, y]);
  return { shapes, latent, image };
}

describe("the small VAE", () => {
  it("maps images to latents of a quarter of their side with latentChannels channels, and back", async () => {
    const result = await runOn("cpu", async () => {
      const vae = await initSmallVae(TINY, 1);
      const x = tf.tensor4d(values(2 * 16 * 24 * 3, 3), [2, 16, 24, 3]);
      const out = await reconstruct(vae, x);
      x.dispose();
      disposeSmallVae(vae);
      return out.shapes;
    });
    expect(result.latent).toEqual([2, 4, 6, 4]);
    expect(result.image).toEqual([2, 16, 24, 3]);
  });

  it("reads its configuration from a manifest and refuses widths the shortcuts cannot split", () => {
    expect(parseSmallVaeConfig({ ...DEFAULT_SMALL_VAE })).toEqual(DEFAULT_SMALL_VAE);
    expect(() => parseSmallVaeConfig({ ...TINY, channels: [8, 12] })).toThrow(/stage 1/);
    expect(() => parseSmallVaeConfig({ ...TINY, latentChannels: 3 })).toThrow(/multiple of 3/);
    expect(() => parseSmallVaeConfig({ ...TINY, decoderLayers: [1] })).toThrow(/every stage/);
    expect(() => parseSmallVaeConfig({ ...TINY, channels: "8" })).toThrow(/channels/);
  });

  it("saves PyTorch-named weights that load back to the same model, and refuses others", async () => {
    await runOn("cpu", async () => {
      const vae = await initSmallVae(TINY, 2);
      const bytes = await saveSmallVae(vae);
      const again = await loadSmallVae(TINY, safetensorsSource(bytes));
      expect(again.bindings.map((b) => b.names)).toEqual(vae.bindings.map((b) => b.names));
      expect(vae.bindings.map((b) => b.names[0])).toContain("encoder.down_blocks.0.1.conv.weight");
      expect(vae.bindings.map((b) => b.names[0])).toContain("decoder.up_blocks.0.0.conv.weight");
      const x = tf.tensor4d(values(16 * 16 * 3, 4), [1, 16, 16, 3]);
      const a = await reconstruct(vae, x);
      const b = await reconstruct(again, x);
      expect(b.image).toEqual(a.image);
      const wider = { ...TINY, channels: [8, 32] };
      await expect(loadSmallVae(wider, safetensorsSource(bytes))).rejects.toThrow(/shape/);
      tf.dispose(x);
      disposeSmallVae(vae);
      disposeSmallVae(again);
    });
  });

  it("trains: a few Adam steps lower the loss, and a checkpoint resumes the exact same run", async () => {
    await runOn("wasm", async () => {
      const x = tf.tensor4d(values(2 * 16 * 16 * 3, 5), [2, 16, 16, 3]);
      const vae = await initSmallVae(TINY, 3);
      const adam = createAdam(vae);
      const losses = [];
      for (let i = 0; i < 4; i++) losses.push(await trainStep(vae, adam, x, 1e-2));
      expect(losses[3]).toBeLessThan(losses[0]);
      const bytes = await saveCheckpoint(vae, adam, { note: "test" });
      const resumed = await loadCheckpoint(TINY, bytes);
      expect(resumed.adam.step).toBe(4);
      expect(resumed.metadata.note).toBe("test");
      const next = await trainStep(vae, adam, x, 1e-2);
      expect(await trainStep(resumed.vae, resumed.adam, x, 1e-2)).toBe(next);
      tf.dispose(x);
      for (const run of [{ vae, adam }, resumed]) {
        disposeSmallVae(run.vae);
        disposeAdam(run.adam);
      }
    });
  });

  it("encodes and decodes the same on wasm as on cpu", async () => {
    const run = (backend: BackendName) =>
      runOn(backend, async () => {
        const vae = await initSmallVae(TINY, 4);
        // Trained-looking weights: zero-γ blocks would leave the ResBlocks out of the comparison.
        for (const b of vae.bindings) {
          if (b.names[0].endsWith("norm.weight"))
            (b.param as tf.Variable).assign(tf.onesLike(b.param));
        }
        const x = tf.tensor4d(values(2 * 16 * 16 * 3, 6), [2, 16, 16, 3]);
        const out = await reconstruct(vae, x);
        x.dispose();
        disposeSmallVae(vae);
        return out;
      });
    const cpu = await run("cpu");
    const wasm = await run("wasm");
    expect(scaledError(wasm.latent, cpu.latent)).toBeLessThan(1e-5);
    expect(scaledError(wasm.image, cpu.image)).toBeLessThan(1e-5);
  });
});

const SHIPPED = join(import.meta.dirname, "../../models/default-vae");
const readManifest = () => JSON.parse(readFileSync(join(SHIPPED, "manifest.json"), "utf8"));
/** The mean PSNR (dB) below which the shipped weights count as broken. */
const FLOOR_DB = 26;

describe("the shipped default VAE (models/default-vae)", () => {
  it("is the file its manifest pins, loaded through the worker's Vae for kind small-conv", async () => {
    const manifest = readManifest();
    const bytes = new Uint8Array(readFileSync(join(SHIPPED, manifest.vae.weights.path)));
    expect(bytes.length).toBe(manifest.vae.weights.bytes);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(manifest.vae.weights.sha256);
    expect(manifest.vae.latentShape).toEqual({ channels: 8, height: 16, width: 16 });
  });

  it(`reconstructs the held-out crops it ships above ${FLOOR_DB} dB, as recorded, on wasm`, async () => {
    const manifest = readManifest();
    const spec = manifest.vae as VaeSpec;
    const bytes = new Uint8Array(readFileSync(join(SHIPPED, spec.weights?.path ?? "")));
    const { testCrops } = manifest.evaluation;
    const side = spec.inputResolution.height;
    const { images, count } = await readCropStrip(join(SHIPPED, testCrops.file), side);
    expect(count).toBe(testCrops.crops.length);
    const reconstructed = await runOn("wasm", async () => {
      const vae = await loadVae(spec, safetensorsSource(bytes));
      const latents = await vae.encode(images, count);
      expect(latents.length).toBe(count * 8 * 16 * 16);
      const out = await vae.decode(latents, count);
      vae.dispose();
      return out;
    });
    const each = [...psnr(reconstructed, images, count, { height: side, width: side })];
    expect(each.reduce((a, b) => a + b, 0) / count).toBeGreaterThan(FLOOR_DB);
    each.forEach((db, i) => {
      expect(Math.abs(db - testCrops.psnr[i]), testCrops.crops[i]).toBeLessThan(0.05);
    });
  });
});
