/**
 * A train job's per-epoch figures as charts: the worker reports each finished epoch as one
 * `metrics` event (gpu-worker/src/train/metrics.ts, epochMetrics), so the charts grow while the
 * job runs. An epoch reported twice (a task resumed from its checkpoint) counts once, its last
 * report winning.
 */
import type { JobEvent } from "@revq/shared";
import { type Line, LineChart } from "./line-chart.tsx";

type Chart = {
  title: string;
  yLabel: string;
  lines: { metric: string; label: string; scale?: number }[];
};

const CHARTS: Chart[] = [
  {
    title: "Training losses",
    yLabel: "loss",
    lines: [
      { metric: "lossQuantizer", label: "quantizer" },
      { metric: "lossRectifier", label: "rectifier" },
    ],
  },
  {
    title: "Held-out latent MSE",
    yLabel: "MSE",
    lines: [
      { metric: "valLatentMse", label: "before the rectifier" },
      { metric: "valRectifiedMse", label: "after the rectifier" },
    ],
  },
  {
    title: "Held-out PSNR",
    yLabel: "dB",
    lines: [
      { metric: "valPsnr", label: "from tokens" },
      { metric: "vaePsnr", label: "the VAE alone" },
    ],
  },
  {
    title: "Held-out SSIM",
    yLabel: "SSIM",
    lines: [
      { metric: "valSsim", label: "from tokens" },
      { metric: "vaeSsim", label: "the VAE alone" },
    ],
  },
  {
    title: "Code usage",
    yLabel: "% of codes",
    lines: [
      { metric: "usageMean", label: "mean over groups", scale: 100 },
      { metric: "usageMin", label: "least-used group", scale: 100 },
    ],
  },
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

function figureOf(epoch: Epoch, metric: string, scale = 1): number | null {
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
      {CHARTS.map((chart) => {
        const lines: Line[] = chart.lines.map((line) => ({
          label: line.label,
          values: epochs.map((e) => figureOf(e, line.metric, line.scale)),
        }));
        // A figure this training does not measure (no held-out images, say) gets no chart.
        if (!lines.some((line) => line.values.some((v) => v !== null))) return null;
        return (
          <LineChart
            key={chart.title}
            title={chart.title}
            yLabel={chart.yLabel}
            xs={xs}
            lines={lines}
          />
        );
      })}
    </div>
  );
}
