/**
 * revq train's view of a training (cli/src/train-report.ts, cli/src/progress.ts): an aligned
 * row per epoch metric set under one header, a warning when the rectifier made held-out latent
 * MSE worse, and the epoch's bar with the time left.
 */
import type { EpochMetrics, JobEvent } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { duration, progressStage, renderBar } from "../../cli/src/progress.ts";
import { EpochTable, epochHeader, epochMetricsOf, epochRow } from "../../cli/src/train-report.ts";

// As gpu-worker/src/train/metrics.ts sends it: 18 numbers by name.
const EPOCH_1: EpochMetrics = {
  epoch: 1,
  steps: 9,
  lossQuantizer: 0.22963,
  lossRectifier: 1.14912,
  gradNormQuantizer: 0.5,
  gradNormRectifier: 2.5,
  lrQuantizer: 0.01,
  lrRectifier: 0.0005,
  usageMean: 0.8833,
  usageMin: 0.5,
  replacedCodes: 3,
  valLatentMse: 0.54951,
  valRectifiedMse: 1.41299,
  valPsnr: 20.153,
  valSsim: 0.61,
  vaePsnr: 24.2,
  vaeSsim: 0.8,
  seconds: 0.42,
};

const event = (data: Record<string, unknown>, type: JobEvent["type"] = "metrics"): JobEvent => ({
  id: 1,
  type,
  data,
  createdAt: "2026-12-02T06:00:00.000Z",
});

describe("an epoch's row", () => {
  it("holds the epoch, both losses, held-out MSE before → after the rectifier, PSNR and usage, under its header", () => {
    const header = epochHeader();
    const row = epochRow(EPOCH_1);
    expect(header).toBe("epoch   loss q   loss r   held-out MSE q → r   PSNR  usage");
    expect(row).toBe("    1   0.2296   1.1491      0.5495 → 1.4130  20.15  88.3%");
    // Right-aligned: every column ends where its header does.
    expect(row.length).toBe(header.length);
    for (const name of ["loss q", "loss r", "q → r", "PSNR", "usage"]) {
      const end = header.indexOf(name) + name.length;
      expect(row[end - 1]).not.toBe(" ");
      expect(row[end] ?? " ").toBe(" ");
    }
  });

  it("shows a dash where a figure is missing (nothing held out, a perfect PSNR)", () => {
    const { epoch, lossQuantizer, lossRectifier } = EPOCH_1;
    expect(epochRow({ epoch, lossQuantizer, lossRectifier })).toBe(
      "    1   0.2296   1.1491                    -      -      -",
    );
  });
});

describe("the table of a training", () => {
  it("prints its header once, a row per epoch, and a warning under each epoch whose rectifier made held-out MSE worse", () => {
    const table = new EpochTable();
    expect(table.lines(EPOCH_1)).toEqual([
      epochHeader(),
      epochRow(EPOCH_1),
      "warning: epoch 1: the rectifier made held-out latent MSE worse (0.5495 quantized → 1.4130 rectified)",
    ]);
    const better = { ...EPOCH_1, epoch: 2, valRectifiedMse: 0.31 };
    expect(table.lines(better)).toEqual([epochRow(better)]);
  });

  it("takes only epoch metric sets for rows: the latents' and the run's summaries stay events", () => {
    expect(epochMetricsOf(event(EPOCH_1))).toEqual(EPOCH_1);
    expect(epochMetricsOf(event({ latentShards: 3, latentShardsReused: 0 }))).toBeUndefined();
    expect(epochMetricsOf(event({ epochs: 3, trainSeconds: 2.5 }))).toBeUndefined();
    expect(epochMetricsOf(event({ done: 1, total: 2 }, "progress"))).toBeUndefined();
  });
});

describe("the bar of an epoch", () => {
  it("counts the epoch's steps and says how long the run should still take", () => {
    const p = { done: 3, total: 9, stage: "epoch 2/10", etaSeconds: 754.4 };
    expect(progressStage(p)).toBe("epoch 2/10 · 12m34s left");
    expect(renderBar("train   ", p.done, p.total, progressStage(p))).toBe(
      "train    █████████░░░░░░░░░░░░░░░░░░░ 3/9 33% epoch 2/10 · 12m34s left",
    );
    expect(progressStage({ done: 0, stage: "loading the VAE" })).toBe("loading the VAE");
  });

  it("writes times left in seconds, minutes or hours", () => {
    expect([duration(0.4), duration(59.6), duration(61), duration(3599.6), duration(7384)]).toEqual(
      ["0s", "1m00s", "1m01s", "1h00m", "2h03m"],
    );
  });
});
