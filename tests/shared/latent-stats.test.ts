import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  batchStats,
  denormalize,
  emptyStats,
  mergeStats,
  normalize,
  standardDeviation,
  variance,
} from "../../shared/src/quant/index.ts";
import { loadFixture, maxAbsDiff, maxRelDiff } from "../helpers/fixtures.ts";

// ../shared/fixtures README §5 (B): the reference's streaming merge over batches of 128.
describe("preproc_B", () => {
  const fx = loadFixture("preproc_B_stats", "preproc_B");
  const dims = (fx.shape("running_mean") as number[])[0];
  const files = fx.json.data_files as { file: string }[];
  const data = concat(
    files.map(({ file }) => loadFixture(file.replace(".safetensors", ""), "preproc_B").f32("data")),
  );
  const batchSizes = fx.json.batch_sizes as number[];

  const perBatch: { mean: Float64Array; var: Float64Array }[] = [];
  let stats = emptyStats(dims);
  let row = 0;
  for (const size of batchSizes) {
    stats = mergeStats(stats, batchStats(data.subarray(row * dims, (row + size) * dims), dims));
    perBatch.push({ mean: stats.mean, var: variance(stats) });
    row += size;
  }

  it("merges batches to the reference's running statistics after every batch", () => {
    expect(row).toBe(fx.json.num_samples);
    const means = fx.f32("running_mean_per_batch");
    const vars = fx.f32("running_var_per_batch");
    perBatch.forEach((s, b) => {
      expect(maxAbsDiff(s.mean, means.subarray(b * dims, (b + 1) * dims))).toBeLessThan(1e-5);
      expect(maxRelDiff(s.var, vars.subarray(b * dims, (b + 1) * dims))).toBeLessThan(1e-5);
    });
  });

  it("matches the exact float64 statistics", () => {
    expect(maxAbsDiff(stats.mean, fx.f32("exact_mean"))).toBeLessThan(1e-5);
    expect(maxRelDiff(variance(stats), fx.f32("exact_var"))).toBeLessThan(1e-5);
    expect(maxRelDiff(standardDeviation(stats), fx.f32("preprocessor_std"))).toBeLessThan(1e-5);
  });

  it("normalises and inverts like the reference Preprocessor", () => {
    const first8 = data.subarray(0, 8 * dims);
    const mean = fx.f32("running_mean");
    const std = fx.f32("preprocessor_std");
    const normalized = normalize(first8, mean, std);
    expect(maxAbsDiff(normalized, fx.f32("normalized_first8"))).toBeLessThan(1e-5);
    const inverse = denormalize(fx.f32("normalized_first8"), mean, std);
    expect(maxRelDiff(inverse, fx.f32("inverse_first8"), 1)).toBeLessThan(1e-6);
  });
});

describe("mergeStats", () => {
  it("gives the same statistics however the samples are split", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 6, maxLength: 60 }),
        fc.nat(),
        (values, cut) => {
          const dims = 3;
          const n = Math.floor(values.length / dims);
          const samples = Float32Array.from(values.slice(0, n * dims));
          const at = (cut % (n + 1)) * dims;
          const whole = batchStats(samples, dims);
          const split = mergeStats(
            batchStats(samples.subarray(0, at), dims),
            batchStats(samples.subarray(at), dims),
          );
          expect(split.count).toBe(whole.count);
          expect(maxAbsDiff(split.mean, whole.mean)).toBeLessThan(1e-9 * 1e3);
          expect(maxAbsDiff(split.m2, whole.m2)).toBeLessThan(1e-9 * 1e6 * n);
        },
      ),
    );
  });

  it("refuses statistics of different dimensionality", () => {
    expect(() => mergeStats(emptyStats(2), emptyStats(3))).toThrow(/2 and 3 dims/);
  });
});

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
