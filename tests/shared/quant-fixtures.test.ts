import { describe, expect, it } from "vitest";
import {
  countUsage,
  createCodebook,
  initCodebookFromLatents,
  lookupCodes,
  NearestCodeIndex,
  nearestCodesExhaustive,
  quantLayout,
  usagePerGroup,
} from "../../shared/src/quant/index.ts";
import { loadFixture, maxAbsDiff } from "../helpers/fixtures.ts";

// Golden outputs of the reference Quantizer (../shared/fixtures README §3–4). Every number,
// configuration included, is read from the fixture files.
describe.each(["quantizer_A1", "quantizer_A2", "quantizer_A3", "quantizer_A4"])("%s", (name) => {
  const fx = loadFixture(name);
  const [channels, height, width] = fx.json.input_data_size as number[];
  const layout = quantLayout(
    { channels, height, width },
    fx.json.tokens_per_data as number,
    fx.json.num_group as number,
  );
  const K = fx.json.num_code as number;
  const codebook = createCodebook(layout.groups, K, layout.codeDim, fx.f32("embeddings"));
  const x = fx.f32("x");
  const expectedIds = Array.from(fx.i32("indices"));

  it("has the layout the reference uses: tokens are consecutive runs of the C·H·W latent", () => {
    expect(layout.codeDim).toBe(fx.json.code_dim);
    expect(x).toEqual(fx.f32("x_shuffle"));
  });

  it("finds the reference's nearest codes exactly, exact ties to the lowest index", () => {
    const fast = new NearestCodeIndex(codebook).search(x, layout.tokens);
    expect(Array.from(fast.ids)).toEqual(expectedIds);
    const exhaustive = nearestCodesExhaustive(codebook, x, layout.tokens);
    expect(Array.from(exhaustive.ids)).toEqual(expectedIds);
    expect(fast.squaredDistances).toEqual(exhaustive.squaredDistances);
  });

  it("reports distances within the reference's own float32 error", () => {
    const { squaredDistances } = new NearestCodeIndex(codebook).search(x, layout.tokens);
    const dist = squaredDistances.map(Math.sqrt);
    expect(maxAbsDiff(dist, fx.f32("min_dist_f64"))).toBeLessThan(1e-6);
    expect(maxAbsDiff(dist, fx.f32("min_dist"))).toBeLessThan(5e-6);
  });

  it("looks codes up exactly (x_quant)", () => {
    expect(lookupCodes(codebook, expectedIds, layout.tokens)).toEqual(fx.f32("x_quant"));
  });

  it("counts usage like the reference's count buffer", () => {
    const hits = new Float64Array(layout.groups * K);
    countUsage(hits, codebook, expectedIds, layout.tokens);
    expect(Array.from(hits)).toEqual(Array.from(fx.f32("count_hits")));
    expect(Array.from(hits, (h) => h + 1)).toEqual(Array.from(fx.f32("count")));
    const usage = usagePerGroup(hits, codebook);
    const mean = usage.reduce((a, b) => a + b, 0) / usage.length;
    expect(mean).toBeCloseTo(fx.json.usage_hits as number, 12);
  });

  it.runIf(fx.json.codebank_saved)(
    "initialises the codebook from the bank like the reference",
    () => {
      const sources = Uint32Array.from(fx.i32("codebook_sample_indices"));
      const init = initCodebookFromLatents(fx.f32("codebank"), layout, sources, K);
      expect(init.data).toEqual(fx.f32("embeddings"));
    },
  );
});
