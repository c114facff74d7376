/** What `revq-train` prints: a progress bar while an epoch runs, a table row per epoch, a report. */

import type { EpochRecord, StepProgress } from "./run.ts";

const BAR = 24;

/** One line, redrawn in place on a terminal: where the epoch is and how it goes. */
export function progressLine(p: StepProgress, epochs: number, latentsPerSecond: number): string {
  const filled = Math.round((p.step / p.steps) * BAR);
  return (
    `epoch ${p.epoch + 1}/${epochs} [${"#".repeat(filled)}${"-".repeat(BAR - filled)}] ` +
    `${p.step}/${p.steps}  loss q ${p.lossQuantizer.toFixed(4)} r ${p.lossRectifier.toFixed(4)}  ` +
    `${Math.round(latentsPerSecond)} latents/s`
  );
}

const COLUMNS = [
  ["epoch", 7],
  ["loss q", 9],
  ["loss r", 9],
  ["val q", 9],
  ["val r", 9],
  ["PSNR", 7],
  ["SSIM", 7],
  ["usage", 7],
  ["reset", 7],
  ["lat/s", 8],
  ["time", 8],
] as const;

export function tableHeader(): string {
  return COLUMNS.map(([name, width]) => name.padStart(width)).join("");
}

export function epochRow(r: EpochRecord, epochs: number): string {
  const v = r.validation;
  const cells = [
    `${r.epoch + 1}/${epochs}`,
    r.lossQuantizer.toFixed(4),
    r.lossRectifier.toFixed(4),
    v ? v.latentMse.toFixed(4) : "-",
    v ? v.rectifiedMse.toFixed(4) : "-",
    v?.psnr !== undefined ? v.psnr.toFixed(2) : "-",
    v?.ssim !== undefined ? v.ssim.toFixed(3) : "-",
    `${(100 * r.usageMean).toFixed(1)}%`,
    String(r.replacedCodes),
    String(Math.round(r.latentsPerSecond)),
    duration(r.seconds),
  ];
  return cells.map((cell, i) => cell.padStart(COLUMNS[i][1])).join("");
}

export type FinalReport = {
  out: string;
  hash: string;
  tokens: number;
  codes: number;
  images: number;
  seconds: number;
  last: EpochRecord;
};

export function finalReport(f: FinalReport): string {
  const v = f.last.validation;
  const bits = f.tokens * Math.log2(f.codes);
  const lines = [
    `tokenizer ${f.hash}`,
    `  written to ${f.out}`,
    `  ${f.tokens} tokens × ${f.codes} codes: ${bits.toFixed(0)} bits (${(bits / 8).toFixed(0)} bytes) per image`,
    `  trained on ${f.images} latents in ${duration(f.seconds)}`,
    `  last epoch: loss quantizer ${f.last.lossQuantizer.toFixed(5)}, rectifier ${f.last.lossRectifier.toFixed(5)}, usage ${(100 * f.last.usageMean).toFixed(1)}% (min ${(100 * f.last.usageMin).toFixed(1)}%)`,
  ];
  if (v) {
    lines.push(
      `  held out: latent MSE ${v.latentMse.toFixed(5)} quantized, ${v.rectifiedMse.toFixed(5)} rectified`,
    );
  }
  if (v?.psnr !== undefined && v.vaePsnr !== undefined) {
    lines.push(
      `  images from tokens: PSNR ${v.psnr.toFixed(2)} dB, SSIM ${v.ssim?.toFixed(4)} (the VAE alone: ${v.vaePsnr.toFixed(2)} dB, ${v.vaeSsim?.toFixed(4)})`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
