// The token-count sweep's plot (scripts/token-count-sweep/plot.ts): Vega-Lite rendered to SVG in
// Node, every row's figures in the panel they belong to.
import { describe, expect, it } from "vitest";
import {
  renderSweepSvg,
  type SweepResult,
  type SweepRow,
  sweepSpec,
} from "../../scripts/token-count-sweep/plot.ts";

function row(
  id: string,
  series: SweepRow["series"],
  tokens: number,
  groups: number,
  codes: number,
  mse: number,
): SweepRow {
  const bitsPerToken = Math.log2(codes);
  return {
    id,
    series,
    tokens,
    groups,
    codes,
    codeDim: 2048 / tokens,
    bitsPerToken,
    bitsPerImage: tokens * bitsPerToken,
    heldOutLatents: 25,
    latentMse: { quantized: mse, rectified: mse * 0.8 },
    psnr: { vae: 28.87, tokens: 28 - mse, codebookAlone: 27.9 - mse },
    ssim: { vae: 0.83, tokens: 0.81, codebookAlone: 0.8 },
    usage: { min: 0.5, mean: groups === 1 ? 0.99 : 0.6 },
    trainSeconds: 1,
  };
}

const RESULT: SweepResult = {
  description: "test",
  quick: true,
  latents: 256,
  heldOutLatents: 25,
  epochs: 1,
  batchSize: 16,
  rectifier: {
    lossWeighting: "uniform",
    channels: 16,
    blocks: 1,
    headDim: 16,
    multiscales: [5],
    lr: 0.002,
  },
  heldOutCrops: 63,
  usageCrops: 64,
  backend: "cpu",
  rows: [
    row("T256-K4096", "tokens", 256, 1, 4096, 0.031),
    row("T512-K4096", "tokens", 512, 1, 4096, 0.019),
    row("T512-K256", "codes", 512, 1, 256, 0.043),
    row("T512-K256-G512", "groups", 512, 512, 256, 0.057),
  ],
};

describe("the token-count sweep's plot", () => {
  it("puts each comparison's rows, before and after the rectifier, in its panel", () => {
    const spec = sweepSpec(RESULT) as unknown as {
      vconcat: { hconcat: { data?: { values: Record<string, unknown>[] } }[] }[];
    };
    const [fig9, , groups] = spec.vconcat.flatMap((r) => r.hconcat);
    expect(fig9.data?.values.map((d) => [d.id, d.latentMse])).toEqual([
      ["T256-K4096", 0.031],
      ["T256-K4096", 0.031 * 0.8],
      ["T512-K4096", 0.019],
      ["T512-K4096", 0.019 * 0.8],
    ]);
    expect(new Set(groups.data?.values.map((d) => d.id))).toEqual(
      new Set(["T512-K256", "T512-K256-G512"]),
    );
  });

  it("leaves the groups comparison out when the sweep did not run both of its variants", () => {
    const tokensOnly = { ...RESULT, rows: RESULT.rows.filter((r) => r.series === "tokens") };
    expect((sweepSpec(tokensOnly) as { vconcat: unknown[] }).vconcat).toHaveLength(1);
    expect((sweepSpec(RESULT) as { vconcat: unknown[] }).vconcat).toHaveLength(2);
  });

  it("renders to SVG in Node", async () => {
    const svg = await renderSweepSvg(RESULT);
    expect(svg.startsWith("<svg")).toBe(true);
    for (const text of [
      "Fig. 9",
      "VAE alone",
      "T512-K256",
      "512 per-position codebooks",
      "QUICK",
    ]) {
      expect(svg).toContain(text);
    }
  });
});
