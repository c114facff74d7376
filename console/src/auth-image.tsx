/**
 * An image or a file of the API, fetched with the key (a plain <img src> or link would carry no
 * bearer header) and shown or saved from an object URL, freed when the element goes.
 */
import { useEffect, useState } from "preact/hooks";
import { describeError } from "./api.ts";
import { useSession } from "./session-context.ts";
import { useTask } from "./use-task.ts";

export function AuthImage({ path, alt }: { path: string; alt: string }) {
  const { api } = useSession();
  const bytes = useTask(() => api.bytes(path), [path]);
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (bytes.state !== "done") return;
    const made = URL.createObjectURL(new Blob([bytes.value as BlobPart]));
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [bytes]);
  if (bytes.state === "failed") {
    return (
      <span class="thumb thumb-missing" title={describeError(bytes.error)}>
        not loaded
      </span>
    );
  }
  return url ? <img class="thumb" src={url} alt={alt} /> : <span class="thumb" />;
}

/** A button that downloads `path` with the key and saves it as `name`. */
export function DownloadButton({
  path,
  name,
  label,
}: {
  path: string;
  name: string;
  label: string;
}) {
  const { api } = useSession();
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const download = async () => {
    setBusy(true);
    setFailure(null);
    try {
      const url = URL.createObjectURL(new Blob([(await api.bytes(path)) as BlobPart]));
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 0);
    } catch (error) {
      setFailure(describeError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span>
      <button type="button" disabled={busy} onClick={download}>
        {busy ? "Downloading…" : label}
      </button>
      {failure && (
        <span class="note-error" role="alert">
          {" "}
          {failure}
        </span>
      )}
    </span>
  );
}
