/**
 * A one-line progress bar, redrawn in place on a terminal and at most ten times a second. Without
 * a terminal it draws nothing: logs and pipes get the final summary only.
 */
import type { Progress as JobProgress } from "@revq/shared";

const WIDTH = 28;

type Stream = { write(text: string): unknown; columns?: number };

export class Progress {
  private readonly label: string;
  private readonly stream: Stream | undefined;
  private lastDraw = 0;
  private drawn = false;

  constructor(label: string, stream: Stream | undefined) {
    this.label = label;
    this.stream = stream;
  }

  /** done of total (total unknown: a spinner-free count), with an optional stage name. */
  update(done: number, total?: number, stage?: string): void {
    if (!this.stream) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && !(total !== undefined && done >= total)) return;
    this.lastDraw = now;
    this.draw(renderBar(this.label, done, total, stage));
  }

  /** Any text in the bar's place (a status while nothing is counted yet). */
  status(text: string): void {
    if (!this.stream) return;
    this.draw(`${this.label} ${text}`);
  }

  /** Clears the bar, so that what follows starts on a clean line. */
  end(): void {
    if (!this.stream || !this.drawn) return;
    this.stream.write("\r\x1b[2K");
    this.drawn = false;
  }

  private draw(line: string): void {
    // 0 or absent when the terminal does not say its width.
    const columns = this.stream?.columns || 80;
    this.stream?.write(`\r\x1b[2K${line.slice(0, Math.max(10, columns - 1))}`);
    this.drawn = true;
  }
}

export function renderBar(label: string, done: number, total?: number, stage?: string): string {
  const suffix = stage ? ` ${stage}` : "";
  if (total === undefined || total <= 0) return `${label} ${done}${suffix}`;
  const fraction = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(fraction * WIDTH);
  const bar = `${"█".repeat(filled)}${"░".repeat(WIDTH - filled)}`;
  return `${label} ${bar} ${done}/${total} ${Math.floor(fraction * 100)}%${suffix}`;
}

/** The progress's stage with the time left, for the bar. */
export function progressStage(p: JobProgress): string {
  const left = p.etaSeconds === undefined ? "" : `${duration(p.etaSeconds)} left`;
  return [p.stage, left].filter(Boolean).join(" · ");
}

export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
