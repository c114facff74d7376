// The rectifier's loss weighting (a run's rectifierLossWeighting, docs/training.md): parsed
// strictly, absent for the paper's uniform mse (so such runs' configurations are unchanged), and
// `latent-variance` weights each dimension's squared error by std² / mean(std²) in the step.
import { createCodebook, quantLayout, Rng } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { initRectifier, rectify } from "../../gpu-worker/src/models/rectifier.ts";
import { resolveTrainConfig, TrainConfigError } from "../../gpu-worker/src/train/config.ts";
import { rectifierLossWeights } from "../../gpu-worker/src/train/loss-weights.ts";
import { createQuantizer, gatherCodes } from "../../gpu-worker/src/train/quantizer.ts";
import { rectifierObjective } from "../../gpu-worker/src/train/rectifier-objective.ts";
import { createTrainState, lossesAndGradients, toNhwc } from "../../gpu-worker/src/train/step.ts";

const LATENT = { channels: 4, height: 4, width: 4 };
const DIMS = 64;
const RECTIFIER = { channels: 32, blocks: 1, headDim: 8, multiscales: [5] };

beforeAll(async () => {
  await selectBackend("cpu");
});

describe("rectifierLossWeighting", () => {
  const config = (p: object) =>
    resolveTrainConfig({ tokens: 16, codes: 8, rectifier: RECTIFIER, ...p }, LATENT, false);

  it("is absent for the paper's uniform mse, given or not, and kept otherwise", () => {
    expect(config({})).not.toHaveProperty("rectifierLossWeighting");
    expect(config({ rectifierLossWeighting: "uniform" })).toEqual(config({}));
    expect(config({ rectifierLossWeighting: "latent-variance" }).rectifierLossWeighting).toBe(
      "latent-variance",
    );
  });

  it("refuses an unknown weighting, naming the parameter", () => {
    expect(() => config({ rectifierLossWeighting: "pixels" })).toThrow(TrainConfigError);
    expect(() => config({ rectifierLossWeighting: "pixels" })).toThrow(/rectifierLossWeighting/);
  });

  it("latent-variance: std² over its mean, channels-last; uniform: none", async () => {
    const std = Float32Array.from({ length: DIMS }, (_, i) => 0.25 + (i % 7) * 0.1);
    const normalizer = { mean: new Float32Array(DIMS), std };
    expect(rectifierLossWeights(config({}).rectifierLossWeighting, LATENT, normalizer)).toBeNull();
    const w = rectifierLossWeights(
      config({ rectifierLossWeighting: "latent-variance" }).rectifierLossWeighting,
      LATENT,
      normalizer,
    );
    if (!w) throw new Error("expected weights");
    expect(w.shape).toEqual([1, 4, 4, 4]);
    const values = (await w.data()) as Float32Array;
    w.dispose();
    const meanVariance = std.reduce((a, s) => a + s * s, 0) / DIMS;
    // NHWC index (h, w, c) holds C-H-W dimension c·16 + h·4 + w.
    for (const [h, x, c] of [
      [0, 0, 0],
      [1, 2, 3],
      [3, 3, 1],
    ]) {
      const s = std[c * 16 + h * 4 + x];
      expect(values[(h * 4 + x) * 4 + c]).toBeCloseTo((s * s) / meanVariance, 6);
    }
    expect(values.reduce((a, b) => a + b, 0) / DIMS).toBeCloseTo(1, 6);
  });
});

describe("a step with weights", () => {
  const layout = quantLayout(LATENT, 16, 16);
  const rng = new Rng(3);
  const batch = Float32Array.from({ length: 2 * DIMS }, () => rng.nextNormal());
  const codes = Float32Array.from({ length: 16 * 8 * 4 }, () => rng.nextNormal());
  let state: ReturnType<typeof createTrainState>;

  beforeAll(async () => {
    state = createTrainState({
      latentShape: LATENT,
      quantizer: createQuantizer(layout, createCodebook(16, 8, 4, codes)),
      rectifier: await initRectifier({ latentChannels: 4, ...RECTIFIER }, 9),
      learningRates: { quantizer: 0.01, rectifier: 0.001 },
      rectifierWeightDecay: 1e-4,
      assignment: "exact",
    });
  });
  afterAll(() => {
    tf.dispose(state.rectifier.bindings.map((b) => b.param));
    state.quantizer.embeddings.dispose();
    state.counts.dispose();
  });

  const std = Float32Array.from({ length: DIMS }, (_, i) => 0.25 + (i % 7) * 0.1);
  const normalizer = { mean: new Float32Array(DIMS), std };

  /** The step's rectifier loss under a run's weighting, and its codebook rows (the assignment). */
  async function rectifierLoss(weighting?: "latent-variance") {
    const objective = rectifierObjective(
      { latentShape: LATENT, ...(weighting ? { rectifierLossWeighting: weighting } : {}) },
      normalizer,
    );
    const g = await lossesAndGradients(state, batch, (await objective.forBatch([])).loss);
    objective.dispose();
    const loss = (await g.lossRectifier.data())[0];
    const rows = (await g.rows.data()) as Int32Array;
    tf.dispose([g.rows, g.lossQuantizer, g.lossRectifier, g.quantizer, ...g.rectifier]);
    return { loss, rows };
  }

  it("is the paper's loss unweighted and the weighted mean otherwise", async () => {
    const plain = await rectifierLoss();
    const paper = await lossesAndGradients(state, batch);
    expect((await paper.lossRectifier.data())[0]).toBeCloseTo(plain.loss, 6);
    tf.dispose([paper.rows, paper.lossQuantizer, paper.lossRectifier, paper.quantizer]);
    tf.dispose(paper.rectifier);

    const weighted = await rectifierLoss("latent-variance");
    // The same weighted mean, from the rectifier's output on the batch's quantized latents.
    const weights = rectifierLossWeights("latent-variance", LATENT, normalizer) as tf.Tensor4D;
    const expected = tf.tidy(() => {
      const q = toNhwc(
        gatherCodes(state.quantizer, tf.tensor1d(weighted.rows, "int32")),
        LATENT,
        2,
      );
      const target = toNhwc(tf.tensor2d(batch, [32, 4]), LATENT, 2);
      return tf.mean(tf.mul(tf.squaredDifference(rectify(state.rectifier, q), target), weights));
    });
    expect(weighted.loss).toBeCloseTo((await expected.data())[0], 6);
    expect(Math.abs(weighted.loss - plain.loss)).toBeGreaterThan(1e-4);
    tf.dispose([weights, expected]);
  });
});
