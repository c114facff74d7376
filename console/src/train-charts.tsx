/**
 * A train job's per-epoch figures as charts: the worker reports each finished epoch as one
 * `metrics` event (gpu-worker/src/train/metrics.ts, epochMetrics), so the charts grow while the
 * job runs. An epoch reported twice (a task resumed from its checkpoint) counts once, its last
 * report winning.
 */
import type { JobEvent } from "@revq/shared";
import { type Line, LineChart } from "./line-chart.tsx";

/**
 * Every chart, a row each: title, y-axis label, the factor its values are shown at (usage as a
 * percentage), and its series, metric → legend label.
 */
const CHARTS: [title: string, yLabel: string, scale: number, series: Record<string, string>][] = [
  ["Training losses", "loss", 1, { lossQuantizer: "quantizer", lossRectifier: "rectifier" }],
  [
    "Held-out latent MSE",
    "MSE",
    1,
    { valLatentMse: "before the rectifier", valRectifiedMse: "after the rectifier" },
  ],
  ["Held-out PSNR", "dB", 1, { valPsnr: "from tokens", vaePsnr: "the VAE alone" }],
  ["Held-out SSIM", "SSIM", 1, { valSsim: "from tokens", vaeSsim: "the VAE alone" }],
  [
    "Code usage",
    "% of codes",
    100,
    { usageMean: "mean over groups", usageMin: "least-used group" },
  ],
];

type Epoch = Record<string, unknown> & { epoch: number };

function epochsOf(events: JobEvent[]): Epoch[] {
  const byEpoch = new Map<number, Epoch>();
  for (const event of events) {
    const epoch = event.data.epoch;
    if (event.type === "metrics" && typeof epoch === "number") {
      byEpoch.set(epoch, { ...event.data, epoch });
    }
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

function figureOf(epoch: Epoch, metric: string, scale: number): number | null {
  const value = epoch[metric];
  return typeof value === "number" ? value * scale : null;
}

export function TrainCharts({ events, running }: { events: JobEvent[]; running: boolean }) {
  const epochs = epochsOf(events);
  if (epochs.length === 0) {
    return (
      <p class="empty">
        {running
          ? "No epoch has finished yet: the charts start with the first one."
          : "This training reported no epochs."}
      </p>
    );
  }
  const xs = epochs.map((e) => e.epoch);
  return (
    <div class="charts">
      {CHARTS.map(([title, yLabel, scale, series]) => {
        const lines: Line[] = Object.entries(series).map(([metric, label]) => ({
          label,
          values: epochs.map((e) => figureOf(e, metric, scale)),
        }));
        // A figure this training does not measure (no held-out images, say) gets no chart.
        if (!lines.some((line) => line.values.some((v) => v !== null))) return null;
        return <LineChart key={title} title={title} yLabel={yLabel} xs={xs} lines={lines} />;
      })}
    </div>
  );
}
