/**
 * How revq train shows a train job as it trains: a bar of the epoch's steps with the time the
 * worker says is left, and one aligned row per epoch of the figures its metric set carries,
 * under a header, with a warning when the rectifier made held-out latent MSE worse.
 */
import { EpochMetrics, type JobEvent, rectifierWarning } from "@revq/shared";

const COLUMNS = [
  ["epoch", 5],
  ["loss q", 9],
  ["loss r", 9],
  ["held-out MSE q → r", 21],
  ["PSNR", 7],
  ["usage", 7],
] as const;

export function epochHeader(): string {
  return COLUMNS.map(([name, width]) => name.padStart(width)).join("");
}

export function epochRow(m: EpochMetrics): string {
  const mse =
    m.valLatentMse === undefined || m.valRectifiedMse === undefined
      ? "-"
      : `${m.valLatentMse.toFixed(4)} → ${m.valRectifiedMse.toFixed(4)}`;
  const cells = [
    String(m.epoch),
    m.lossQuantizer.toFixed(4),
    m.lossRectifier.toFixed(4),
    mse,
    m.valPsnr === undefined ? "-" : m.valPsnr.toFixed(2),
    m.usageMean === undefined ? "-" : `${(100 * m.usageMean).toFixed(1)}%`,
  ];
  return cells.map((cell, i) => cell.padStart(COLUMNS[i][1])).join("");
}

/** An epoch's metric set, or undefined for any other (the latents', the run's summary). */
export function epochMetricsOf(event: JobEvent): EpochMetrics | undefined {
  if (event.type !== "metrics") return undefined;
  const parsed = EpochMetrics.safeParse(event.data);
  return parsed.success ? parsed.data : undefined;
}

/** The lines an epoch's metric set adds to the table: the header first, then its row. */
export class EpochTable {
  private started = false;

  lines(m: EpochMetrics): string[] {
    const lines = this.started ? [] : [epochHeader()];
    this.started = true;
    lines.push(epochRow(m));
    const warning = rectifierWarning(m);
    if (warning) lines.push(warning);
    return lines;
  }
}
