/** How times, progress and values read on the page. */
import type { Job } from "@revq/shared";

const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function when(iso: string | null | undefined): string {
  return iso ? TIME.format(new Date(iso)) : "—";
}

export function progressText(progress: Job["progress"]): string {
  if (!progress) return "";
  const count =
    progress.total === undefined ? `${progress.done}` : `${progress.done}/${progress.total}`;
  const parts = [
    count,
    progress.stage,
    progress.etaSeconds !== undefined && `about ${duration(progress.etaSeconds)} left`,
  ];
  return parts.filter(Boolean).join(" · ");
}

/** Seconds as a person reads a wait: "40 s", "3 min", "1 h 20 min". */
export function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 90 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A number at a precision a person can compare, whatever its scale. */
export function figure(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)
    ? value.toExponential(3)
    : value.toPrecision(4);
}
