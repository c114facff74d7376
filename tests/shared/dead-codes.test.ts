import { describe, expect, it } from "vitest";
import { createCodebook, Rng, resetDeadCodes } from "../../shared/src/quant/index.ts";
import { loadFixture } from "../helpers/fixtures.ts";

// ../shared/fixtures README §4 (A5): which zero-count codes are overwritten depends on the
// reference's unstable sort, so the fixture is checked by its properties, not positions.
describe.each(["quantizer_A5_reset", "quantizer_A5b_reset"])("%s", (name) => {
  const fx = loadFixture(name);
  const [G, K, D] = fx.shape("embeddings_before");
  const before = fx.f32("embeddings_before");
  const counts = Float64Array.from(fx.f32("count"));
  const codebook = createCodebook(G, K, D, before.slice());
  const replaced = resetDeadCodes(codebook, counts, {
    ratio: fx.json.reset_ratio as number,
    noise: fx.json.reset_noise as number,
    rng: new Rng(0),
  });
  const code = (data: Float32Array, g: number, k: number) =>
    Array.from(data.subarray((g * K + k) * D, (g * K + k + 1) * D));

  it("replaces as many codes per group as the reference", () => {
    expect(Array.from(replaced)).toEqual(Array.from(fx.i32("num_replaced")));
    expect(replaced.reduce((a, b) => a + b, 0)).toBe(
      fx.json.total_replaced ?? fx.i32("num_replaced").reduce((a, b) => a + b, 0),
    );
  });

  it("overwrites only dead codes, each with a copy of one of the r most-used codes", () => {
    for (let g = 0; g < G; g++) {
      const hits = Array.from(counts.subarray(g * K, (g + 1) * K));
      const rthLargest = [...hits].sort((a, b) => b - a)[replaced[g] - 1];
      let changed = 0;
      for (let k = 0; k < K; k++) {
        const now = code(codebook.data, g, k);
        if (now.join() === code(before, g, k).join()) continue;
        changed++;
        expect(hits[k]).toBe(0);
        const sources = hits
          .map((h, s) => ({ h, s }))
          .filter(({ h, s }) => h >= rthLargest && code(before, g, s).join() === now.join());
        expect(sources.length).toBeGreaterThan(0);
      }
      // A dead code may already equal its source (duplicate codes), so "changed" can be lower.
      expect(changed).toBeLessThanOrEqual(replaced[g]);
    }
  });

  it("adds Gaussian noise of the requested std to the copied codes", () => {
    const noisy = createCodebook(G, K, D, before.slice());
    resetDeadCodes(noisy, counts, { ratio: 0.2, noise: 0.1, rng: new Rng(7) });
    // Same ranking as the noise-free reset above, so the difference is the noise alone.
    const noise: number[] = [];
    for (let i = 0; i < before.length; i++) {
      if (noisy.data[i] !== codebook.data[i]) noise.push(noisy.data[i] - codebook.data[i]);
    }
    expect(noise.length).toBe(replaced.reduce((a, b) => a + b, 0) * D);
    const std = Math.sqrt(noise.reduce((a, v) => a + v * v, 0) / noise.length);
    expect(std).toBeGreaterThan(0.07);
    expect(std).toBeLessThan(0.13);
  });
});

describe("resetDeadCodes", () => {
  it("is deterministic for a seed and leaves groups without dead codes alone", () => {
    const run = () => {
      const cb = createCodebook(
        2,
        10,
        3,
        Float32Array.from({ length: 60 }, (_, i) => i),
      );
      const counts = new Float64Array(20).fill(1);
      counts[13] = 0; // group 1, code 3 is dead; group 0 has none
      const r = resetDeadCodes(cb, counts, { ratio: 0.2, noise: 0.1, rng: new Rng(42) });
      return { r: Array.from(r), data: Array.from(cb.data) };
    };
    const a = run();
    expect(a).toEqual(run());
    expect(a.r).toEqual([0, 1]);
    expect(a.data.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // The source is the most-used code of group 1: all tie at 1, so the lowest index, code 0.
    const moved = a.data.slice(39, 42);
    for (const [d, v] of moved.entries()) expect(Math.abs(v - (30 + d))).toBeLessThan(1);
  });

  it("resets at least one dead code a group for any ratio but 0, and none at 0", () => {
    const reset = (ratio: number) => {
      const cb = createCodebook(1, 10, 2, new Float32Array(20).fill(1));
      const counts = new Float64Array(10).fill(0);
      counts[0] = 5;
      return Array.from(resetDeadCodes(cb, counts, { ratio, noise: 0.1, rng: new Rng(1) }));
    };
    expect([reset(0.01), reset(0.2), reset(0)]).toEqual([[1], [2], [0]]);
  });
});
