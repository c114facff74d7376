/**
 * Datasets: the tenant's list (with a form to make an upload dataset), and one dataset, to which
 * images are added by dropping them on the page or choosing them (the bulk-add route, as one
 * multipart request: all or nothing, so a refused image leaves the dataset as it was). Its first
 * images are shown as thumbnails and can be encoded as one job.
 */
import type { Dataset, DatasetImageList, DatasetImagesAdded, Job } from "@revq/shared";
import { useState } from "preact/hooks";
import { AuthImage } from "./auth-image.tsx";
import { DetailPage, Field } from "./detail-page.tsx";
import { ErrorNote } from "./error-note.tsx";
import { when } from "./format.ts";
import { href } from "./hash-route.ts";
import { useSession } from "./session-context.ts";
import { usePoll } from "./use-poll.ts";

type DatasetPage = { datasets: Dataset[]; nextCursor: string | null };

const REFRESH_MS = 5000;
/** Thumbnails shown (one page of the listing): enough to look at, not a gallery. */
const SHOWN_IMAGES = 100;

function size(bytes: number | null): string {
  if (bytes === null) return "—";
  return bytes < 1 << 20
    ? `${(bytes / 1024).toFixed(1)} KiB`
    : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function CreateDataset() {
  const { api } = useSession();
  const [name, setName] = useState("");
  const [failure, setFailure] = useState<unknown>(undefined);
  const create = async (event: Event) => {
    event.preventDefault();
    setFailure(undefined);
    try {
      const made = await api.post<Dataset>("/v1/datasets", { name });
      location.hash = href(["datasets", made.id]);
    } catch (error) {
      setFailure(error);
    }
  };
  return (
    <form class="inline-form" onSubmit={create}>
      <label for="dataset-name">New dataset</label>
      <input
        id="dataset-name"
        value={name}
        placeholder="a name, e.g. cat photos"
        onInput={(e) => setName((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Create</button>
      <ErrorNote error={failure} />
    </form>
  );
}

export function DatasetsPage() {
  const page = usePoll((api) => api.get<DatasetPage>("/v1/datasets?limit=100"), [], REFRESH_MS);
  const datasets = page.data?.datasets;
  return (
    <section>
      <h1>Datasets</h1>
      <CreateDataset />
      <ErrorNote error={page.error} />
      {!datasets ? (
        page.error === undefined && <p class="loading">Loading the datasets…</p>
      ) : datasets.length === 0 ? (
        <div class="empty">
          <p>No datasets yet.</p>
          <p>
            Create one above and drop images on it, or let <code>revq train</code>{" "}
            <code>photos/</code> make one.
          </p>
        </div>
      ) : (
        <table class="list">
          <thead>
            <tr>
              <th>name</th>
              <th>source</th>
              <th>images</th>
              <th>size</th>
              <th>updated</th>
            </tr>
          </thead>
          <tbody>
            {datasets.map((d) => (
              <tr key={d.id} data-dataset={d.id}>
                <td>
                  <a href={href(["datasets", d.id])}>{d.name}</a>
                </td>
                <td>{d.source === "prefix" ? <code>{d.prefix}</code> : "uploads"}</td>
                <td>{d.imageCount ?? "counted when trained on"}</td>
                <td>{size(d.bytes)}</td>
                <td>{when(d.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Only images go up: other files dropped with them are named and left out. */
function imagesOf(files: FileList | null): { images: File[]; skipped: string[] } {
  const all = [...(files ?? [])];
  return {
    images: all.filter((f) => f.type.startsWith("image/")),
    skipped: all.filter((f) => !f.type.startsWith("image/")).map((f) => f.name),
  };
}

function DropZone({ dataset, onAdded }: { dataset: Dataset; onAdded(): void }) {
  const { api } = useSession();
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(undefined);
  const [skipped, setSkipped] = useState<string[]>([]);
  const add = async (files: FileList | null) => {
    const { images, skipped } = imagesOf(files);
    setSkipped(skipped);
    setFailure(undefined);
    if (images.length === 0) return;
    const form = new FormData();
    for (const image of images) form.append("images", image, image.name);
    setBusy(`Adding ${images.length} image${images.length === 1 ? "" : "s"}…`);
    try {
      await api.upload<DatasetImagesAdded>(
        `/v1/datasets/${encodeURIComponent(dataset.id)}/images`,
        form,
      );
      onAdded();
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(null);
    }
  };
  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: a drop target only; the file chooser inside serves the keyboard
    <div
      class={over ? "drop-zone drop-over" : "drop-zone"}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        void add(e.dataTransfer?.files ?? null);
      }}
    >
      <p>
        {busy ?? "Drop PNG, JPEG or WebP images here, or "}
        {!busy && (
          <label class="file-pick">
            choose them
            <input
              type="file"
              accept="image/png,image/jpeg,image/webp"
              multiple
              onChange={(e) => void add((e.target as HTMLInputElement).files)}
            />
          </label>
        )}
      </p>
      {skipped.length > 0 && (
        <p class="note note-error" role="alert">
          Not images, left out: {skipped.join(", ")}
        </p>
      )}
      <ErrorNote error={failure} />
    </div>
  );
}

function EncodeButton({ images }: { images: string[] }) {
  const { api } = useSession();
  const [failure, setFailure] = useState<unknown>(undefined);
  const encode = async () => {
    setFailure(undefined);
    try {
      const job = await api.post<Job>("/v1/jobs", { kind: "encode", inputs: { images } });
      location.hash = href(["jobs", job.id]);
    } catch (error) {
      setFailure(error);
    }
  };
  return (
    <div class="actions">
      <button type="button" onClick={encode}>
        Encode {images.length === 1 ? "this image" : `these ${images.length} images`}
      </button>{" "}
      <span class="muted">with the tenant's default tokenizer</span>
      <ErrorNote error={failure} />
    </div>
  );
}

/** The dataset's first images, read again whenever its count changes. */
function DatasetImages({ dataset }: { dataset: Dataset }) {
  const listed = usePoll(
    (api) =>
      api.get<DatasetImageList>(
        `/v1/datasets/${encodeURIComponent(dataset.id)}/images?limit=${SHOWN_IMAGES}`,
      ),
    [dataset.id, dataset.imageCount],
    REFRESH_MS,
  );
  const ids = listed.data?.images.map((image) => image.id);
  return (
    <>
      <h2>Images</h2>
      <ErrorNote error={listed.error} />
      {!ids ? (
        listed.error === undefined && <p class="loading">Loading the images…</p>
      ) : ids.length === 0 ? (
        <p class="empty">No images yet: drop some above.</p>
      ) : (
        <>
          {listed.data?.nextCursor && (
            <p class="muted">
              The first {ids.length} of {dataset.imageCount}, in the order they were added.
            </p>
          )}
          <ul class="thumbs">
            {ids.map((image) => (
              <li key={image} data-image={image}>
                <AuthImage path={`/v1/images/${encodeURIComponent(image)}/content`} alt={image} />
              </li>
            ))}
          </ul>
          <EncodeButton images={ids} />
        </>
      )}
    </>
  );
}

export function DatasetPage({ id }: { id: string }) {
  const polled = usePoll(
    (api) => api.get<Dataset>(`/v1/datasets/${encodeURIComponent(id)}`),
    [id],
    REFRESH_MS,
  );
  return (
    <DetailPage
      list="datasets"
      title={polled.data ? polled.data.name : <code>{id}</code>}
      error={polled.error}
      data={polled.data}
      loading="the dataset"
    >
      {(dataset) => (
        <>
          <dl class="fields">
            <Field name="id">
              <code>{dataset.id}</code>
            </Field>
            <Field name="images" class="image-count">
              {dataset.imageCount ?? "counted when a training freezes it"}
            </Field>
            <Field name="size">{size(dataset.bytes)}</Field>
            <Field name="updated">{when(dataset.updatedAt)}</Field>
          </dl>
          {dataset.source === "prefix" ? (
            <p class="empty">
              A prefix dataset holds the files under <code>{dataset.prefix}</code> in the bucket:
              add and list images there through the S3 API, not here.
            </p>
          ) : (
            <>
              <DropZone dataset={dataset} onAdded={() => polled.reload()} />
              <DatasetImages dataset={dataset} />
            </>
          )}
        </>
      )}
    </DetailPage>
  );
}
