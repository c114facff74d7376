/**
 * The token-count sweep's figures (scripts/token-count-sweep.ts) as one SVG: Vega-Lite compiled
 * to Vega and rendered headless in Node (no browser, no canvas). Four panels, two by two: held-out latent MSE
 * before and after the rectifier against the token count (the paper's Figure 9 claim), PSNR
 * against bits per image, and one shared codebook against per-position codebooks at equal bits
 * (PSNR and held-out code usage).
 */
import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

export type SweepRow = {
  id: string;
  /** Which comparison the variant belongs to. */
  series: "tokens" | "codes" | "groups";
  tokens: number;
  groups: number;
  codes: number;
  codeDim: number;
  bitsPerToken: number;
  bitsPerImage: number;
  heldOutLatents: number;
  /** Normalised units, on the held-out latents. */
  latentMse: { quantized: number; rectified: number };
  /** On the default VAE's held-out grid crops; `tokens` decodes through the rectifier. */
  psnr: { vae: number; tokens: number; codebookAlone: number };
  ssim: { vae: number; tokens: number; codebookAlone: number };
  /** Fraction of each group's codes hit by seeded random held-out crops. */
  usage: { min: number; mean: number };
  trainSeconds: number;
};

export type SweepResult = {
  description: string;
  quick: boolean;
  latents: number;
  heldOutLatents: number;
  epochs: number;
  batchSize: number;
  rectifier: {
    lossWeighting: string;
    channels: number;
    blocks: number;
    headDim: number;
    multiscales: readonly number[];
    lr: number;
  };
  heldOutCrops: number;
  usageCrops: number;
  backend: string;
  rows: SweepRow[];
};

/** A row of a vertical concatenation. */
type ConcatRow = Extract<TopLevelSpec, { vconcat: unknown }>["vconcat"][number];

const RECTIFIED = "tokens → codebook → rectifier";
const PLAIN = "tokens → codebook alone";
const COLORS = { domain: [PLAIN, RECTIFIED], range: ["#9e9e9e", "#1f77b4"] };
/** The y axis of both PSNR panels. */
const PSNR_AXIS = {
  field: "psnr",
  type: "quantitative",
  scale: { zero: false },
  title: "PSNR (dB), held-out crops",
} as const;

export async function renderSweepSvg(result: SweepResult): Promise<string> {
  const view = new View(parse(compile(sweepSpec(result)).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The Vega-Lite specification of the four panels. */
export function sweepSpec(result: SweepResult): TopLevelSpec {
  const long = result.rows.flatMap((r) => [
    {
      id: r.id,
      series: r.series,
      tokens: r.tokens,
      bits: r.bitsPerImage,
      layout: r.groups === 1 ? "1 shared codebook" : `${r.groups} per-position codebooks`,
      decode: PLAIN,
      latentMse: r.latentMse.quantized,
      psnr: r.psnr.codebookAlone,
      vaePsnr: r.psnr.vae,
      usage: r.usage.mean,
    },
    {
      id: r.id,
      series: r.series,
      tokens: r.tokens,
      bits: r.bitsPerImage,
      layout: r.groups === 1 ? "1 shared codebook" : `${r.groups} per-position codebooks`,
      decode: RECTIFIED,
      latentMse: r.latentMse.rectified,
      psnr: r.psnr.tokens,
      vaePsnr: r.psnr.vae,
      usage: r.usage.mean,
    },
  ]);
  const color = {
    field: "decode",
    type: "nominal",
    scale: COLORS,
    legend: { title: null, orient: "bottom", labelLimit: 400 },
  } as const;
  const byTokens = long.filter((d) => d.series === "tokens");
  const oneGroup = long.filter((d) => d.series !== "groups");
  const k256 = result.rows.find((r) => r.series === "groups")?.codes;
  const groupPair = long.filter((d) => d.series === "groups" || d.id === `T512-K${k256}`);
  const subtitle = `${result.latents} latents (${result.heldOutLatents} held out), ${result.epochs} epochs, rectifier ${result.rectifier.channels} ch × ${result.rectifier.blocks} block${result.quick ? ", QUICK" : ""}`;
  const groupsRow: ConcatRow = {
    hconcat: [
      {
        title: `Groups at equal bits (512 tokens × ${k256} codes): PSNR`,
        width: 260,
        height: 160,
        data: { values: groupPair },
        mark: { type: "point", filled: true, size: 80 },
        encoding: {
          x: { field: "layout", type: "nominal", title: null, axis: { labelAngle: 0 } },
          y: PSNR_AXIS,
          color,
        },
      },
      {
        title: "Groups at equal bits: held-out code usage",
        width: 260,
        height: 160,
        data: { values: groupPair.filter((d) => d.decode === RECTIFIED) },
        mark: { type: "bar", color: "#2ca02c" },
        encoding: {
          x: {
            field: "layout",
            type: "nominal",
            title: null,
            axis: { labelAngle: 0 },
          },
          y: {
            field: "usage",
            type: "quantitative",
            scale: { domain: [0, 1] },
            axis: { format: "%" },
            title: "codes hit (mean over groups)",
          },
        },
      },
    ],
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "ReVQ on the default VAE: token count, codebook size, groups", subtitle },
    config: { font: "sans-serif", view: { stroke: null } },
    vconcat: [
      {
        hconcat: [
          {
            title: "Latent MSE against token count (the paper's Fig. 9 claim)",
            width: 260,
            height: 220,
            data: { values: byTokens },
            mark: { type: "line", point: true },
            encoding: {
              x: {
                field: "tokens",
                type: "quantitative",
                scale: { type: "log", base: 2 },
                axis: { values: byTokens.map((d) => d.tokens), title: "tokens (12 bits each)" },
              },
              y: { field: "latentMse", type: "quantitative", title: "latent MSE (normalised)" },
              color,
            },
          },
          {
            title: "PSNR against bits per image (one shared codebook)",
            width: 260,
            height: 220,
            layer: [
              {
                data: { values: oneGroup },
                mark: { type: "point", filled: true, size: 60 },
                encoding: {
                  x: {
                    field: "bits",
                    type: "quantitative",
                    scale: { type: "log", base: 2 },
                    title: "bits per image",
                  },
                  y: PSNR_AXIS,
                  color,
                  tooltip: [{ field: "id" }, { field: "psnr", format: ".2f" }],
                },
              },
              {
                data: { values: oneGroup },
                mark: { type: "text", dy: -9, fontSize: 9 },
                transform: [{ filter: `datum.decode === '${RECTIFIED}'` }],
                encoding: {
                  x: { field: "bits", type: "quantitative", scale: { type: "log", base: 2 } },
                  y: { field: "psnr", type: "quantitative" },
                  text: { field: "id" },
                },
              },
              {
                data: { values: oneGroup.slice(0, 1) },
                mark: { type: "rule", strokeDash: [4, 3], color: "#d62728" },
                encoding: { y: { field: "vaePsnr", type: "quantitative" } },
              },
              {
                data: { values: oneGroup.slice(0, 1) },
                mark: { type: "text", align: "left", dx: 4, dy: -6, color: "#d62728", fontSize: 9 },
                encoding: {
                  x: { value: 0 },
                  y: { field: "vaePsnr", type: "quantitative" },
                  text: { value: "VAE alone" },
                },
              },
            ],
          },
        ],
      },
      // The groups comparison, when the sweep ran both of its variants.
      ...(new Set(groupPair.map((d) => d.id)).size === 2 ? [groupsRow] : []),
    ],
  };
}
