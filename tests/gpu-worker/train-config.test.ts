import { batchStats, Rng, standardDeviation } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { RECTIFIER_PRESETS } from "../../gpu-worker/src/models/rectifier.ts";
import {
  PAPER_DEFAULTS,
  resolveTrainConfig,
  TRAIN_PRESETS,
} from "../../gpu-worker/src/train/config.ts";
import {
  gatherLatents,
  latentSet,
  latentStatistics,
  shuffledOrder,
  splitHeldOut,
} from "../../gpu-worker/src/train/dataset.ts";
import { psnr, ssim } from "../../gpu-worker/src/train/image-metrics.ts";

const DCAE = { channels: 32, height: 8, width: 8 };
const SMALL = { channels: 8, height: 16, width: 16 };

describe("training configuration", () => {
  it("defaults to the paper: 512 × 16384 on DC-AE latents, AdamW rates, 100 epochs of 256", () => {
    const c = resolveTrainConfig({}, DCAE, true);
    expect([c.tokens, c.groups, c.codes]).toEqual([512, 512, 16384]);
    expect(c.rectifier).toEqual(RECTIFIER_PRESETS["512x16384"]);
    expect(c.learningRates).toEqual({ quantizer: 0.01, rectifier: 0.0005 });
    expect([c.epochs, c.batchSize, c.rectifierWeightDecay]).toEqual([100, 256, 1e-4]);
    expect(c.reset).toEqual({ ratio: 0.2, noise: 0.1 });
    expect(c.assignment).toBe("device");
    expect(resolveTrainConfig({}, DCAE, false).assignment).toBe("exact");
    expect(c.seed).toBe(PAPER_DEFAULTS.seed);
  });

  it("has presets for the paper's three configurations and the small VAE", () => {
    const sizes = (preset: keyof typeof TRAIN_PRESETS, shape = DCAE) => {
      const c = resolveTrainConfig({ preset }, shape, false);
      return [c.tokens, c.groups, c.codes, c.rectifier.channels, c.rectifier.blocks];
    };
    // The paper's: one codebook per token position.
    expect(sizes("512x16384")).toEqual([512, 512, 16384, 512, 3]);
    expect(sizes("256x65536")).toEqual([256, 256, 65536, 1024, 4]);
    expect(sizes("256x262144")).toEqual([256, 256, 262144, 512, 4]);
    expect(resolveTrainConfig({}, SMALL, false).codes).toBe(TRAIN_PRESETS.small.codes);
    // The small VAE's: one codebook shared by all 512 positions, as the default tokenizer.
    expect(sizes("small", SMALL)).toEqual([512, 1, 4096, 64, 2]);
  });

  it("takes each parameter over the preset", () => {
    const c = resolveTrainConfig(
      {
        preset: "small",
        tokens: 256,
        groups: 64,
        codes: 100,
        epochs: 3,
        batchSize: 8,
        learningRates: { rectifier: 0.001 },
        rectifier: { channels: 16, blocks: 1, headDim: 8, multiscales: [3] },
        reset: { noise: 0 },
        seed: 9,
        assignment: "device",
      },
      SMALL,
      false,
    );
    expect([c.tokens, c.groups, c.codes, c.epochs, c.batchSize, c.seed]).toEqual([
      256, 64, 100, 3, 8, 9,
    ]);
    expect(c.learningRates).toEqual({ quantizer: 0.01, rectifier: 0.001 });
    expect(c.rectifier).toEqual({
      latentChannels: 8,
      channels: 16,
      blocks: 1,
      headDim: 8,
      multiscales: [3],
    });
    expect(c.reset).toEqual({ ratio: 0.2, noise: 0 });
    expect(c.assignment).toBe("device");
  });

  it("takes each rectifier field over the preset's, residual only when true", () => {
    const rectifier = (given: object) =>
      resolveTrainConfig({ preset: "small", rectifier: given }, SMALL, false).rectifier;
    const { channels, headDim } = TRAIN_PRESETS.small.rectifier;
    expect(rectifier({ residual: true })).toEqual({
      ...TRAIN_PRESETS.small.rectifier,
      multiscales: [5],
      residual: true,
    });
    expect(rectifier({ blocks: 3 })).toEqual({
      latentChannels: 8,
      channels,
      blocks: 3,
      headDim,
      multiscales: [5],
    });
    expect(rectifier({ residual: false })).not.toHaveProperty("residual");
    expect(() => rectifier({ residual: "yes" })).toThrow(/rectifier\.residual/);
  });

  it("refuses bad parameters, naming them", () => {
    const bad =
      (parameters: unknown, shape = SMALL) =>
      () =>
        resolveTrainConfig(parameters, shape, false);
    expect(bad({ epochs: 0 })).toThrow(/epochs/);
    expect(bad({ epoch: 3 })).toThrow(/epoch/);
    expect(bad({ preset: "huge" })).toThrow(/preset/);
    expect(bad({ learningRates: { quantizer: -1 } })).toThrow(/learningRates.quantizer/);
    expect(bad({ learningRates: { rectifier: 0 } })).toThrow(/learningRates.rectifier/);
    // 0 keeps a given codebook as it is (run.ts); the rectifier must learn.
    expect(bad({ learningRates: { quantizer: 0 } })).not.toThrow();
    expect(bad({ tokens: 300 })).toThrow(/cannot be cut into 300 equal tokens/);
    expect(bad({ groups: 3 })).toThrow(/groups do not divide/);
    expect(bad({ preset: "512x16384" })).toThrow(/32-channel latents, the VAE's have 8/);
    expect(bad({ rectifier: { channels: 20, blocks: 1, headDim: 8, multiscales: [5] } })).toThrow(
      /multiple/,
    );
    expect(bad({ rectifier: { channels: 16, blocks: 1, headDim: 8, multiscales: [4] } })).toThrow(
      /odd/,
    );
    expect(bad("fast")).toThrow(/invalid training parameters/);
  });
});

describe("training latents", () => {
  const dims = 3;
  const shards = [
    Float32Array.from([0, 1, 2, 3, 4, 5]),
    Float32Array.from([6, 7, 8]),
    Float32Array.from([9, 10, 11, 5, 5, 5]),
  ];
  const set = latentSet(shards, dims);

  it("reads latents across shards in any order", () => {
    expect(set.count).toBe(5);
    expect([...gatherLatents(set, [4, 0, 2, 3])]).toEqual([5, 5, 5, 0, 1, 2, 6, 7, 8, 9, 10, 11]);
    expect(() => gatherLatents(set, [5])).toThrow(/not in \[0, 5\)/);
    expect(() => latentSet([new Float32Array(4)], 3)).toThrow(/not whole latents/);
  });

  it("merges statistics over shards like one batch; a constant dimension gets std 1", () => {
    const all = new Float32Array([...shards[0], ...shards[1], ...shards[2]]);
    const whole = batchStats(all, dims);
    const { mean, std } = latentStatistics(set);
    expect([...mean]).toEqual([...Float32Array.from(whole.mean)]);
    expect([...std]).toEqual([...Float32Array.from(standardDeviation(whole))]);
    const constant = latentStatistics(latentSet([Float32Array.from([2, 2, 2, 2])], 2));
    expect([...constant.std]).toEqual([1, 1]);
  });

  it("shuffles and splits reproducibly", () => {
    const order = shuffledOrder(new Rng(3), 50);
    expect([...order].toSorted((a, b) => a - b)).toEqual([...Array(50).keys()]);
    expect(order).toEqual(shuffledOrder(new Rng(3), 50));
    const split = splitHeldOut(50, 10, 4);
    expect(split).toEqual(splitHeldOut(50, 10, 4));
    expect(split.heldOut).toHaveLength(10);
    expect([...split.train, ...split.heldOut].toSorted((a, b) => a - b)).toEqual([
      ...Array(50).keys(),
    ]);
    expect(() => splitHeldOut(10, 10, 1)).toThrow(/still train/);
  });
});

describe("image metrics", () => {
  // Reference values from an independent numpy/scipy computation of the same definitions
  // (scipy.signal.convolve2d 'valid' with the 11×11 σ 1.5 Gaussian; float64).
  const size = { height: 16, width: 20 };
  const n = 16 * 20 * 3;
  const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from(
    { length: n },
    (_, i) => Math.sin(i * 0.37) + 0.2 * Math.cos(i * 1.3),
  );

  it("matches an independent SSIM and PSNR", () => {
    expect(ssim(a, b, 1, size)[0]).toBeCloseTo(0.9828415361852039, 6);
    expect(psnr(a, b, 1, size)[0]).toBeCloseTo(23.703681496621996, 5);
  });

  it("gives 1 and infinity for identical images, per image", () => {
    const two = new Float32Array([...a, ...b]);
    const twoOther = new Float32Array([...a, ...a]);
    expect([...ssim(two, two, 2, size)].map((v) => Number(v.toFixed(12)))).toEqual([1, 1]);
    expect(psnr(twoOther, two, 2, size)[0]).toBe(Number.POSITIVE_INFINITY);
    expect(() => ssim(a, b, 2, size)).toThrow(/need 1920 values/);
  });
});
