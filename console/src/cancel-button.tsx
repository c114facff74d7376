/** Cancels a queued or running job (the edge makes a repeat harmless); nothing for the others. */
import type { Job } from "@revq/shared";
import { useState } from "preact/hooks";
import { describeError, KeyRefused } from "./api.ts";
import { useSession } from "./session-context.ts";

export function CancelButton({ job, onDone }: { job: Job; onDone(): void }) {
  const { api, signOut } = useSession();
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  if (job.status !== "queued" && job.status !== "running") return null;
  const cancel = async () => {
    setBusy(true);
    setFailure(null);
    try {
      await api.post(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`);
      onDone();
    } catch (error) {
      if (error instanceof KeyRefused) signOut(`The edge refused the key: ${error.message}`);
      else setFailure(describeError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="cancel">
      <button type="button" disabled={busy} onClick={cancel}>
        {busy ? "Cancelling…" : "Cancel"}
      </button>
      {failure && (
        <span class="note-error" role="alert">
          {failure}
        </span>
      )}
    </span>
  );
}
