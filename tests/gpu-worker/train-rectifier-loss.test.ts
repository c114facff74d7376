// The rectifier's loss (a run's rectifierLoss, docs/training.md): absent for the paper's latent
// loss (so such runs' configurations are unchanged); `decoder` is the frozen VAE decoder's pixel
// MSE of the rectified against the true latent, differentiated through the decoder; `image` is its
// image of the rectified latent against the dataset's image.
import { Rng } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import {
  disposeRectifier,
  initRectifier,
  type Rectifier,
  rectify,
} from "../../gpu-worker/src/models/rectifier.ts";
import type { Vae } from "../../gpu-worker/src/models/vae.ts";
import { loadCheckpoint, saveCheckpoint } from "../../gpu-worker/src/train/checkpoint.ts";
import {
  resolveTrainConfig,
  type TrainConfig,
  TrainConfigError,
} from "../../gpu-worker/src/train/config.ts";
import { latentSet, latentStatistics } from "../../gpu-worker/src/train/dataset.ts";
import {
  DECODER_LOSS_SCALE,
  type RectifierLossFn,
  type RectifierObjective,
  rectifierObjective,
} from "../../gpu-worker/src/train/rectifier-objective.ts";
import { disposeRun, runEpoch, startRun, type TrainData } from "../../gpu-worker/src/train/run.ts";
import { loadFixtureVae } from "./helpers/train-vae.ts";

// The fixture DC-AE at 16×16: latents 8×4×4, 32 tokens of 4.
const LATENT = { channels: 8, height: 4, width: 4 };
const DIMS = 128;
const RECTIFIER = { channels: 8, blocks: 1, headDim: 8, multiscales: [5] };

let vae: Vae;
beforeAll(async () => {
  await selectBackend("cpu");
  vae = await loadFixtureVae({ height: 16, width: 16 });
});
afterAll(() => vae.dispose());

const config = (p: object) =>
  resolveTrainConfig({ tokens: 32, codes: 16, rectifier: RECTIFIER, ...p }, LATENT, false);

describe("rectifierLoss", () => {
  it("is absent for the paper's latent loss, given or not, and kept otherwise", () => {
    expect(config({})).not.toHaveProperty("rectifierLoss");
    expect(config({ rectifierLoss: "latent" })).toEqual(config({}));
    expect(config({ rectifierLoss: "decoder" }).rectifierLoss).toBe("decoder");
    expect(config({ rectifierLoss: "image" }).rectifierLoss).toBe("image");
  });

  it("refuses an unknown loss, and a latent weighting with the decoder's", () => {
    expect(() => config({ rectifierLoss: "pixels" })).toThrow(/rectifierLoss/);
    for (const rectifierLoss of ["decoder", "image"]) {
      const both = { rectifierLoss, rectifierLossWeighting: "latent-variance" };
      expect(() => config(both)).toThrow(TrainConfigError);
      expect(() => config(both)).toThrow(/rectifierLossWeighting: weights the latent loss/);
    }
  });
});

describe("the decoder loss", () => {
  const rng = new Rng(11);
  const normalizer = {
    mean: Float32Array.from({ length: DIMS }, () => 0.3 * rng.nextNormal()),
    std: Float32Array.from({ length: DIMS }, () => 0.5 + rng.nextFloat()),
  };
  const nhwc = () =>
    tf.tensor4d(
      Float32Array.from({ length: 2 * DIMS }, () => rng.nextNormal()),
      [2, 4, 4, 8],
    );
  let objective: RectifierObjective;
  let loss: RectifierLossFn;
  let r: Rectifier;
  beforeAll(async () => {
    objective = rectifierObjective({ latentShape: LATENT, rectifierLoss: "decoder" }, normalizer, {
      vae,
    });
    ({ loss } = await objective.forBatch([0, 1]));
    r = await initRectifier({ latentChannels: 8, ...RECTIFIER }, 4);
  });
  afterAll(() => {
    disposeRectifier(r);
    objective.dispose();
  });

  /** C-H-W latents, de-normalised, as the VAE's own decode takes them. */
  async function vaeLatents(normalised: tf.Tensor4D): Promise<Float32Array> {
    const chw = (await tf.transpose(normalised, [0, 3, 1, 2]).data()) as Float32Array;
    return chw.map((v, k) => v * normalizer.std[k % DIMS] + normalizer.mean[k % DIMS]);
  }

  it("is the scaled pixel MSE of the VAE's own decodes", async () => {
    const [q, x] = [nhwc(), nhwc()];
    const rectified = rectify(r, q);
    const value = (await loss(rectified, x).data())[0];
    const a = await vae.decode(await vaeLatents(rectified), 2);
    const b = await vae.decode(await vaeLatents(x), 2);
    const mse = a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length;
    expect(value).toBeGreaterThan(0);
    expect(value).toBeCloseTo(mse * DECODER_LOSS_SCALE, 3);
    tf.dispose([q, x, rectified]);
  });

  it("differentiates through the decoder: its gradient predicts the loss's change", async () => {
    // x near q keeps the loss small, and so float32's rounding of it against its slope.
    const [q, noise, direction] = [nhwc(), nhwc(), nhwc()];
    const x = tf.add(q, tf.mul(noise, 0.1)) as tf.Tensor4D;
    const f = (v: tf.Tensor) => loss(v as tf.Tensor4D, x);
    const gradient = tf.grad(f)(q);
    const slope = (await tf.sum(tf.mul(gradient, direction)).data())[0];
    // This random-weight decoder bends sharply (ReLU), so the step is small.
    const h = 1e-3;
    const at = async (s: number) =>
      (await tf.tidy(() => f(tf.add(q, tf.mul(direction, s)) as tf.Tensor4D)).data())[0];
    const numeric = ((await at(h)) - (await at(-h))) / (2 * h);
    expect(Math.abs(slope)).toBeGreaterThan(1e-3);
    expect(Math.abs(numeric - slope)).toBeLessThan(1e-2 * Math.abs(slope));
    tf.dispose([q, noise, x, direction, gradient]);
  });
});

describe("the image loss", () => {
  const rng = new Rng(13);
  const normalizer = { mean: new Float32Array(DIMS), std: new Float32Array(DIMS).fill(1) };
  const pictures = Array.from({ length: 3 }, () =>
    Float32Array.from({ length: 16 * 16 * 3 }, () => 2 * rng.nextFloat() - 1),
  );
  const images = { count: 3, load: async (i: number) => pictures[i] };
  const image = { latentShape: LATENT, rectifierLoss: "image" } as const;

  it("is the scaled pixel MSE of the VAE's decode against the batch's own images", async () => {
    const objective = rectifierObjective(image, normalizer, { vae, images });
    const rectified = tf.tensor4d(
      Float32Array.from({ length: 2 * DIMS }, () => rng.nextNormal()),
      [2, 4, 4, 8],
    );
    const before = tf.memory().numTensors;
    const batch = await objective.forBatch([2, 0]);
    const value = (await tf.tidy(() => batch.loss(rectified, rectified)).data())[0];
    expect(tf.memory().numTensors).toBe(before + 2); // the images and the value
    batch.release();
    expect(tf.memory().numTensors).toBe(before + 1);
    const chw = (await tf.transpose(rectified, [0, 3, 1, 2]).data()) as Float32Array;
    const decoded = await vae.decode(chw, 2);
    const expected = [...pictures[2], ...pictures[0]];
    const mse = decoded.reduce((s, v, i) => s + (v - expected[i]) ** 2, 0) / decoded.length;
    expect(value).toBeCloseTo(mse * DECODER_LOSS_SCALE, 2);
    objective.dispose();
    rectified.dispose();
  });

  it("needs the VAE and the dataset's images", () => {
    expect(() => rectifierObjective(image, normalizer, { images })).toThrow(/needs the VAE/);
    expect(() => rectifierObjective(image, normalizer, { vae })).toThrow(/dataset's images/);
  });

  it("refuses an image of another size than the VAE takes", async () => {
    const small = { count: 1, load: async () => new Float32Array(8 * 8 * 3) };
    const objective = rectifierObjective(image, normalizer, { vae, images: small });
    await expect(objective.forBatch([0])).rejects.toThrow(
      /image 0 has 192 values; the VAE takes 16×16×3/,
    );
    objective.dispose();
  });
});

describe.each(["decoder", "image"] as const)("a run with the %s loss", (rectifierLoss) => {
  const rng = new Rng(5);
  const all = Float32Array.from({ length: 48 * DIMS }, () => rng.nextNormal());
  const latents = latentSet([all], DIMS);
  const pictures = Array.from({ length: 48 }, () =>
    Float32Array.from({ length: 16 * 16 * 3 }, () => 2 * rng.nextFloat() - 1),
  );
  const data = (withSources: boolean): TrainData => ({
    latents,
    train: Uint32Array.from({ length: 16 }, (_, i) => i),
    heldOut: latentSet([all.slice(40 * DIMS)], DIMS),
    normalizer: latentStatistics(latents),
    ...(withSources ? { vae, images: { count: 48, load: async (i) => pictures[i] } } : {}),
  });
  const run: TrainConfig = {
    ...config({ rectifierLoss, rectifier: { ...RECTIFIER, residual: true } }),
    epochs: 1,
    batchSize: 8,
  };

  it("needs the VAE", async () => {
    const r = await startRun(run, data(false));
    await expect(runEpoch(r, data(false))).rejects.toThrow(/needs the VAE/);
    disposeRun(r);
  });

  it("trains through it, and its checkpoint keeps the loss", async () => {
    // wasm: the decoder's backward on cpu takes seconds a step.
    await selectBackend("wasm");
    const r = await startRun(run, data(true));
    const losses: number[] = [];
    await runEpoch(r, data(true), { onStep: (p) => losses.push(p.lossRectifier) });
    expect(losses).toHaveLength(2);
    expect(losses.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
    const store = new Map<string, Uint8Array>();
    const checkpoints = {
      read: async (name: string) => store.get(name) ?? null,
      write: async (name: string, bytes: Uint8Array) => {
        store.set(name, bytes.slice());
      },
    };
    await saveCheckpoint(checkpoints, r, "d");
    const resumed = await loadCheckpoint(checkpoints, "d");
    expect(resumed?.config.rectifierLoss).toBe(rectifierLoss);
    disposeRun(r);
    if (resumed) disposeRun(resumed);
    await selectBackend("cpu");
  });
});
