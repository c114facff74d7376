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
  return progress.stage ? `${count} · ${progress.stage}` : count;
}

/** A number at a precision a person can compare, whatever its scale. */
export function figure(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)
    ? value.toExponential(3)
    : value.toPrecision(4);
}
