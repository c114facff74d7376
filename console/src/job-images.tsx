/**
 * An encode or reconstruct job's images: each original beside its reconstructions, with PSNR.
 *
 * - encode: the original, and the job's tokens decoded in this browser (decode.ts, loaded on
 *   demand), with the PSNR between them.
 * - reconstruct: the original (when the tokens came from an encode job), the worker's PNG, and
 *   the same tokens decoded in this browser; the PSNR of each against the original, and how
 *   close the browser's pixels come to the worker's (the largest 8-bit difference and the PSNR
 *   between the two).
 *
 * What is compared: RGB values in 8 bits. Originals are scaled to cover the tokenizer's input
 * size and centre-cropped, as the worker prepares them, but by this browser's canvas; so their
 * PSNR is close to, not exactly, the worker's own view of the loss.
 */
import type { Job } from "@revq/shared";
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { Api } from "./api.ts";
import { DownloadButton } from "./auth-image.tsx";
import type { Decoded } from "./decode.ts";
import { ErrorNote } from "./error-note.tsx";
import { href } from "./hash-route.ts";
import { PixelCanvas } from "./pixel-canvas.tsx";
import { compare, decibels, imagePixels, type Size } from "./pixels.ts";
import { useSession } from "./session-context.ts";
import { TokenSummary } from "./token-summary.tsx";
import { useTask } from "./use-task.ts";

/** Images shown (and decoded in the browser) of a job: the first ones. */
const SHOWN = 8;

type Sources = {
  /** The token stream's download, when there is one. */
  tokens: string | null;
  originals: string[];
  /** The worker's PNGs (a reconstruct job's result). */
  worker: string[];
};

function sourcesOf(job: Job, source: Job | null): Sources {
  const inputs = job.inputs as { images?: string[]; job?: string };
  const result = (job.result ?? {}) as { images?: { url: string }[] };
  const originals = (source ?? job).inputs as { images?: string[] };
  return {
    tokens:
      job.kind === "encode"
        ? `/v1/jobs/${encodeURIComponent(job.id)}/tokens`
        : inputs.job
          ? `/v1/jobs/${encodeURIComponent(inputs.job)}/tokens`
          : null,
    originals: (originals.images ?? []).slice(0, SHOWN),
    worker: (result.images ?? []).slice(0, SHOWN).map((image) => image.url),
  };
}

type Loaded = {
  size: Size;
  originals: ImageData[];
  worker: ImageData[];
  stream: Uint8Array | null;
};

async function load(api: Api, job: Job): Promise<Loaded> {
  const sourceId = (job.inputs as { job?: string }).job;
  const source = sourceId ? await api.get<Job>(`/v1/jobs/${encodeURIComponent(sourceId)}`) : null;
  const sources = sourcesOf(job, source);
  const hash = job.tokenizer?.manifestHash;
  if (!hash) throw new Error("The job names no tokenizer.");
  const manifest = await api.get<{ vae: { inputResolution: Size } }>(
    `/v1/tokenizers/${encodeURIComponent(hash)}/manifest.json`,
  );
  const size = manifest.vae.inputResolution;
  const blob = async (path: string) => new Blob([(await api.bytes(path)) as BlobPart]);
  const [originals, worker, stream] = await Promise.all([
    Promise.all(
      sources.originals.map(async (id) =>
        imagePixels(await blob(`/v1/images/${encodeURIComponent(id)}/content`), size),
      ),
    ),
    Promise.all(sources.worker.map(async (path) => imagePixels(await blob(path)))),
    sources.tokens ? api.bytes(sources.tokens) : null,
  ]);
  return { size, originals, worker, stream };
}

async function decodeHere(api: Api, stream: Uint8Array): Promise<Decoded> {
  const { decodeTokens } = await import("./decode.ts");
  return decodeTokens(api, stream, SHOWN);
}

function Figure({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <figure>
      {children}
      <figcaption>{label}</figcaption>
    </figure>
  );
}

function Psnr({ of, against }: { of?: ImageData; against?: ImageData }) {
  if (!of || !against) return null;
  return <span class="psnr">PSNR {decibels(compare(of, against).psnr)}</span>;
}

function Match({ browser, worker }: { browser?: ImageData; worker?: ImageData }) {
  if (!browser || !worker) return null;
  const { maxAbsDiff, psnr } = compare(browser, worker);
  return (
    <span class="match" data-max-abs-diff={maxAbsDiff} data-psnr={psnr}>
      browser vs worker: largest difference {maxAbsDiff}/255, PSNR {decibels(psnr)}
    </span>
  );
}

function Rows({ loaded, decoded }: { loaded: Loaded; decoded?: Decoded }) {
  const count = Math.max(
    loaded.originals.length,
    loaded.worker.length,
    decoded?.images.length ?? 0,
  );
  const { width, height } = loaded.size;
  return (
    <ol class="reconstructions">
      {Array.from({ length: count }, (_, i) => {
        const original = loaded.originals[i];
        const worker = loaded.worker[i];
        const browser = decoded?.images[i];
        return (
          <li key={i} class="reconstruction" data-index={i}>
            {original && (
              <Figure label={`original, scaled to ${width}×${height}`}>
                <PixelCanvas image={original} label={`original ${i}`} />
              </Figure>
            )}
            {worker && (
              <Figure label="the worker's PNG">
                <PixelCanvas image={worker} label={`worker reconstruction ${i}`} />
                <Psnr of={worker} against={original} />
              </Figure>
            )}
            {browser && (
              <Figure label="decoded in this browser">
                <PixelCanvas image={browser} label={`browser reconstruction ${i}`} />
                <Psnr of={browser} against={original} />
              </Figure>
            )}
            <Match browser={browser} worker={worker} />
          </li>
        );
      })}
    </ol>
  );
}

export function JobImages({ job }: { job: Job }) {
  if (job.status !== "succeeded") {
    return <p class="empty">The images appear here once the job has succeeded.</p>;
  }
  return <SucceededImages job={job} />;
}

function SucceededImages({ job }: { job: Job }) {
  const { api } = useSession();
  const loaded = useTask(() => load(api, job), [job.id]);
  const stream = loaded.state === "done" ? loaded.value.stream : null;
  const decoded = useDecode(stream);
  if (loaded.state === "failed") return <ErrorNote error={loaded.error} />;
  if (loaded.state === "running") return <p class="loading">Loading the images…</p>;
  const { originals, worker } = loaded.value;
  const total =
    job.kind === "encode"
      ? ((job.inputs as { images?: string[] }).images?.length ?? 0)
      : ((job.result as { images?: unknown[] } | null)?.images?.length ?? 0);
  return (
    <>
      {stream && <TokenSummary job={job} stream={stream} />}
      <p class="muted">
        PSNR over the RGB values in 8 bits, against the original scaled to cover the tokenizer's
        input and centre-cropped (by this browser's canvas, so close to the worker's own view).
        {total > SHOWN && ` The first ${SHOWN} of ${total} images.`}
      </p>
      <DecodeStatus decoded={decoded} hasTokens={stream !== null} />
      {originals.length === 0 && worker.length === 0 && decoded.state !== "done" ? (
        <p class="empty">This job's tokens name no original images.</p>
      ) : (
        <Rows
          loaded={loaded.value}
          decoded={decoded.state === "done" ? (decoded.value ?? undefined) : undefined}
        />
      )}
      {job.kind === "encode" && <ReconstructButton job={job} />}
      <LatentsDownload job={job} />
    </>
  );
}

/** A reconstruct job that kept its latents: the .npy its PNGs were decoded from. */
function LatentsDownload({ job }: { job: Job }) {
  const latents = (job.result as { latents?: { url: string } } | null)?.latents;
  if (!latents) return null;
  return (
    <div class="actions">
      <DownloadButton
        path={latents.url}
        name={`${job.id}-latents.npy`}
        label="Download the latents (.npy)"
      />{" "}
      <span class="muted">
        what the PNGs were decoded from: rectified, de-normalised, float32 (N, C, H, W)
      </span>
    </div>
  );
}

/** Decodes the stream in this browser once it is there; nothing to do without one. */
function useDecode(stream: Uint8Array | null) {
  const { api } = useSession();
  return useTask<Decoded | null>(async () => (stream ? decodeHere(api, stream) : null), [stream]);
}

function DecodeStatus({
  decoded,
  hasTokens,
}: {
  decoded: ReturnType<typeof useDecode>;
  hasTokens: boolean;
}) {
  if (!hasTokens) {
    return (
      <p class="muted">
        These tokens were uploaded: the edge keeps no download of them, so only the worker's images
        are shown.
      </p>
    );
  }
  if (decoded.state === "running") {
    return <p class="loading decode-status">Decoding the tokens in this browser…</p>;
  }
  if (decoded.state === "failed") return <ErrorNote error={decoded.error} />;
  const value = decoded.value;
  if (!value) return null;
  return (
    <p class="decode-status" data-decoded={value.images.length}>
      Decoded {value.images.length} of {value.recordCount} records in this browser on{" "}
      {value.backend}, in {value.seconds.toFixed(2)} s, with no GPU worker.
    </p>
  );
}

/** Makes a reconstruct job of an encode job's tokens, and goes to it. */
function ReconstructButton({ job }: { job: Job }) {
  const { api } = useSession();
  const [failure, setFailure] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const reconstruct = async () => {
    setBusy(true);
    setFailure(undefined);
    try {
      const made = await api.post<Job>("/v1/jobs", {
        kind: "reconstruct",
        inputs: { job: job.id },
        latents: true,
      });
      location.hash = href(["jobs", made.id]);
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="actions">
      <button type="button" disabled={busy} onClick={reconstruct}>
        {busy ? "Creating…" : "Reconstruct on a worker"}
      </button>{" "}
      <span class="muted">to compare the worker's PNGs with the browser's pixels</span>
      <ErrorNote error={failure} />
    </div>
  );
}
