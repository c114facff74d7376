/**
 * One uPlot line chart against the epoch. The plot is made once per set of series and then only
 * given new data, so a chart that grows while a job runs keeps its size and its cursor.
 */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

export type Line = { label: string; values: (number | null)[] };

const COLORS = ["#2563eb", "#dc2626", "#059669", "#9333ea"];
const HEIGHT = 220;

export function LineChart(props: { title: string; yLabel: string; xs: number[]; lines: Line[] }) {
  const { title, yLabel, xs, lines } = props;
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data: uPlot.AlignedData = [xs, ...lines.map((line) => line.values)];
  const shape = `${title}|${lines.map((line) => line.label).join("|")}`;

  // Remade only when its series change; new data flows in through setData below.
  useEffect(() => {
    const element = holder.current as HTMLDivElement;
    const made = new uPlot(
      {
        title,
        width: element.clientWidth || 480,
        height: HEIGHT,
        scales: { x: { time: false } },
        axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100] }, { label: yLabel }],
        series: [
          { label: "epoch" },
          ...lines.map((line, i) => ({
            label: line.label,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            points: { show: true, size: 6 },
            spanGaps: true,
          })),
        ],
      },
      data,
      element,
    );
    plot.current = made;
    const resize = new ResizeObserver(() =>
      made.setSize({ width: element.clientWidth, height: HEIGHT }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      made.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return <div class="chart" ref={holder} data-chart={title} data-points={xs.length} />;
}
