import type { JobStatus } from "@revq/shared";

export function StatusBadge({ status }: { status: JobStatus }) {
  return <span class={`status status-${status}`}>{status}</span>;
}
