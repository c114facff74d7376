import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  createCodebook,
  NearestCodeIndex,
  nearestCodesExhaustive,
  quantLayout,
  Rng,
} from "../../shared/src/quant/index.ts";

/** Codebooks on a coarse integer grid and queries on a half-integer grid: exact distance ties
 * between different codes, and duplicate codes, are everywhere. */
const tieHeavyCase = fc
  .record({
    groups: fc.integer({ min: 1, max: 4 }),
    perGroup: fc.integer({ min: 1, max: 3 }),
    codes: fc.integer({ min: 1, max: 300 }),
    dim: fc.integer({ min: 1, max: 9 }),
    records: fc.integer({ min: 1, max: 4 }),
    seed: fc.integer(),
  })
  .map(({ groups, perGroup, codes, dim, records, seed }) => {
    const rng = new Rng(seed);
    const tokens = groups * perGroup;
    const codebook = createCodebook(groups, codes, dim);
    for (let i = 0; i < codebook.data.length; i++) codebook.data[i] = rng.nextInt(5) - 2;
    const vectors = Float32Array.from(
      { length: records * tokens * dim },
      () => rng.nextInt(9) / 2 - 2,
    );
    return { codebook, vectors, tokens };
  });

describe("NearestCodeIndex", () => {
  it("agrees exactly with the exhaustive search, ties to the lowest index", () => {
    fc.assert(
      fc.property(tieHeavyCase, ({ codebook, vectors, tokens }) => {
        const fast = new NearestCodeIndex(codebook).search(vectors, tokens);
        const slow = nearestCodesExhaustive(codebook, vectors, tokens);
        expect(fast.ids).toEqual(slow.ids);
        expect(fast.squaredDistances).toEqual(slow.squaredDistances);
      }),
      { numRuns: 200 },
    );
  });

  it("agrees with the exhaustive search on a paper-like shape with Gaussian codes", () => {
    const rng = new Rng(5);
    const layout = quantLayout({ channels: 32, height: 8, width: 8 }, 512);
    const codebook = createCodebook(layout.groups, 256, layout.codeDim);
    codebook.data.forEach((_, i) => {
      codebook.data[i] = rng.nextNormal();
    });
    const vectors = Float32Array.from({ length: 3 * 2048 }, () => rng.nextNormal() * 1.5);
    const fast = new NearestCodeIndex(codebook).search(vectors, layout.tokens);
    expect(fast.ids).toEqual(nearestCodesExhaustive(codebook, vectors, layout.tokens).ids);
  });

  it("rejects vectors that are not whole records", () => {
    const index = new NearestCodeIndex(createCodebook(2, 4, 3));
    expect(() => index.search(new Float32Array(7), 2)).toThrow(/whole number of records/);
    expect(() => index.search(new Float32Array(9), 2)).toThrow(/whole number of records/);
  });
});

describe("quantLayout", () => {
  it("cuts the paper's latent into 512 tokens of 4 and 256 of 8", () => {
    const latent = { channels: 32, height: 8, width: 8 };
    expect(quantLayout(latent, 512)).toEqual({ tokens: 512, groups: 512, codeDim: 4 });
    expect(quantLayout(latent, 256, 64)).toEqual({ tokens: 256, groups: 64, codeDim: 8 });
  });

  it("refuses token counts and groups that do not divide", () => {
    const latent = { channels: 3, height: 4, width: 4 };
    expect(() => quantLayout(latent, 5)).toThrow(/cannot be cut into 5 equal tokens/);
    expect(() => quantLayout(latent, 16, 3)).toThrow(/3 codebook groups do not divide 16/);
    expect(() => quantLayout(latent, 0)).toThrow();
  });
});

describe("Rng", () => {
  it("replays the same sequence from a seed and from a saved state", () => {
    const a = new Rng(123);
    a.nextNormal(); // leaves a spare normal in the state
    const saved = a.state();
    const next = [a.nextNormal(), a.nextUint32(), a.nextInt(10), a.nextFloat()];
    const b = Rng.fromState(saved);
    expect([b.nextNormal(), b.nextUint32(), b.nextInt(10), b.nextFloat()]).toEqual(next);
    expect(new Rng(123).nextUint32()).toBe(new Rng(123).nextUint32());
    expect(new Rng(123).nextUint32()).not.toBe(new Rng(124).nextUint32());
  });

  it("draws uniform integers and standard normals", () => {
    const rng = new Rng(9);
    const hist = new Array(7).fill(0);
    let sum = 0;
    let sumSq = 0;
    const n = 70_000;
    for (let i = 0; i < n; i++) {
      hist[rng.nextInt(7)]++;
      const z = rng.nextNormal();
      sum += z;
      sumSq += z * z;
    }
    for (const h of hist) expect(Math.abs(h - n / 7)).toBeLessThan(5 * Math.sqrt(n / 7));
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.03);
  });
});
