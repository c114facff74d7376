/**
 * Images into an upload dataset (POST /v1/datasets/{id}/images, docs/api.md "Datasets"): tar
 * archives packed with modern-tar, the library the edge reads them with, in batches under both
 * of the edge's limits per request, each batch under its own Idempotency-Key so that a retried
 * request never adds its images twice. The edge adds a batch whole or not at all, so after a
 * refusal the dataset holds exactly the images sent before it, and the error says which.
 */

import { randomUUID } from "node:crypto";
import { basename } from "node:path";
import { type Dataset, DatasetImagesAdded } from "@revq/shared";
import { packTar } from "modern-tar";
import type { Api } from "./api.ts";
import { type Parsed, positiveInt, stringOption } from "./args.ts";
import { CliError, EXIT, usageError } from "./errors.ts";
import { readLocalFile } from "./files.ts";
import { type BatchLimits, batches, type LocalImage } from "./images.ts";
import { onInterrupt } from "./interrupt.ts";
import { formatBytes, type Output } from "./output.ts";

/** The edge's defaults of MAX_DATASET_ADD_IMAGES and MAX_UPLOAD_BYTES (docs/api.md, "Limits"). */
const DEFAULT_LIMITS: BatchLimits = { items: 500, bytes: 64 * 1024 * 1024 };

/** The flags of the commands that add images to a dataset. */
export const ADD_OPTIONS = {
  "max-images": { type: "string" },
  "max-bytes": { type: "string" },
} as const;
/** The help of ADD_OPTIONS, for the command where they apply: `to` says when. */
export function addHelp(to: string): string {
  const { items, bytes } = DEFAULT_LIMITS;
  return `  --max-images <n>    ${to}: images per request, the edge's MAX_DATASET_ADD_IMAGES [${items}]
  --max-bytes <n>     ${to}: bytes per request, the edge's MAX_UPLOAD_BYTES [${bytes}]
`;
}

export function addLimits(parsed: Parsed): BatchLimits {
  return {
    items: positiveInt(parsed, "max-images") ?? DEFAULT_LIMITS.items,
    bytes: positiveInt(parsed, "max-bytes") ?? DEFAULT_LIMITS.bytes,
  };
}

/** The `revq datasets add` that adds the images after the first `done` of `paths`. */
export function resumeCommand(
  datasetId: string,
  paths: string[],
  parsed: Parsed,
  done: number,
): string {
  const flags = Object.keys(ADD_OPTIONS).flatMap((flag) => {
    const value = stringOption(parsed, flag);
    return value === undefined ? [] : [`--${flag}`, value];
  });
  const skip = done > 0 ? ["--skip", String(done)] : [];
  const words = [datasetId, ...paths, ...flags, ...skip].map(shellWord);
  return `revq datasets add ${words.join(" ")}`;
}

/** A word as a POSIX shell reads it back, quoted only when it must be. */
const shellWord = (word: string) =>
  /^[\w./:=@+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;

/** The two zero blocks that end a tar archive. */
const TAR_END = 1024;
const blocks = (n: number) => Math.ceil(n / 512) * 512;

/**
 * The most bytes an entry adds to an archive as modern-tar writes it: its header, its data in
 * 512-byte blocks and, for a name over 100 bytes, a pax header with the name.
 */
export function tarEntryBytes(name: string, size: number): number {
  const nameBytes = new TextEncoder().encode(name).length;
  const pax = nameBytes > 100 ? 512 + blocks(nameBytes + 32) : 0;
  return 512 + blocks(size) + pax;
}

/**
 * An entry is named by the image's number and file name: the edge's refusal names the entry, and
 * that leads back to the file; and no name can be hidden (the edge skips `.` names) or a path.
 */
export const entryName = (number: number, path: string) => `${number}-${basename(path)}`;

type Entry = { image: LocalImage; name: string; tarBytes: number };

export type AddedImage = { file: string; imageId: string };
export type Added = { dataset: Dataset; images: AddedImage[]; requests: number };

export type AddOptions = {
  limits: BatchLimits;
  /** Images already added by an earlier run (--skip): numbering goes on after them. */
  skip?: number;
  /** The command that adds the images left after the first `done`, for the hint of a refusal. */
  resume: (done: number) => string;
};

/** Adds `images` (those after `skip` of a listing) to the dataset, a line per request sent. */
export async function addToDataset(
  api: Api,
  out: Output,
  datasetId: string,
  images: LocalImage[],
  options: AddOptions,
): Promise<Added> {
  const { limits, skip = 0 } = options;
  const entries = images.map((image, i): Entry => {
    const name = entryName(skip + i + 1, image.path);
    return { image, name, tarBytes: tarEntryBytes(name, image.bytes) };
  });
  const alone = entries.find((e) => e.tarBytes + TAR_END > limits.bytes);
  if (alone) {
    throw usageError(
      `${alone.image.path} (${formatBytes(alone.image.bytes)}) does not fit in one request of at most ${limits.bytes} bytes (--max-bytes)`,
      "leave it out, or make it smaller",
    );
  }
  const budget = { items: limits.items, bytes: limits.bytes - TAR_END };
  const plan = batches(entries, budget, (e) => e.tarBytes);
  const total = skip + images.length;
  const added: AddedImage[] = [];
  let dataset: Dataset | undefined;
  let requests = 0;
  const send = async (part: Entry[], label: string) => {
    const answer = await post(api, datasetId, part);
    requests += 1;
    dataset = answer.dataset;
    part.forEach((e, i) => {
      added.push({ file: e.image.path, imageId: answer.imageIds[i] });
    });
    const bytes = part.reduce((sum, e) => sum + e.image.bytes, 0);
    out.note(
      `${label}: ${part.length} image${part.length === 1 ? "" : "s"} (${formatBytes(bytes)}) added, ${skip + added.length}/${total}`,
    );
  };
  onInterrupt(
    `the batches the edge has added stay in dataset ${datasetId}: revq datasets show ${datasetId}`,
  );
  for (const [i, batch] of plan.entries()) {
    const label = `batch ${i + 1}/${plan.length}`;
    let sending = label;
    try {
      try {
        await send(batch, label);
      } catch (error) {
        if (!tooLarge(error) || batch.length < 2) throw error;
        // An edge whose limits are lower than these: one split, so that a slightly lower limit
        // costs a request, and a much lower one is said plainly.
        out.note(`${label}: the edge found it too large (${error.code}); sending it in halves`);
        const half = Math.ceil(batch.length / 2);
        sending = `${label} (first half)`;
        await send(batch.slice(0, half), sending);
        sending = `${label} (second half)`;
        await send(batch.slice(half), sending);
      }
    } catch (error) {
      throw stopped(error, { datasetId, batch, sending, skip, added: added.length, options });
    }
  }
  onInterrupt(undefined);
  if (!dataset) throw new Error("addToDataset: no images");
  return { dataset, images: added, requests };
}

async function post(api: Api, datasetId: string, entries: Entry[]): Promise<DatasetImagesAdded> {
  const files = [];
  for (const entry of entries) {
    const body = await readLocalFile(entry.image.path);
    files.push({ header: { name: entry.name, size: body.length }, body });
  }
  const answer = await api.json(
    "POST",
    `/v1/datasets/${encodeURIComponent(datasetId)}/images`,
    DatasetImagesAdded,
    {
      body: await packTar(files),
      contentType: "application/x-tar",
      idempotencyKey: randomUUID(),
    },
  );
  // Each id is paired with its file by position: a count that differs would pair them wrongly.
  if (answer.imageIds.length !== entries.length) {
    throw new CliError(
      `the edge added ${answer.imageIds.length} images of an archive of ${entries.length}`,
      EXIT.unavailable,
      { hint: "the edge may run another version than this CLI" },
    );
  }
  return answer;
}

/** A refusal for the request's size, not for an image in it: a smaller request may pass. */
function tooLarge(error: unknown): error is CliError {
  return (
    error instanceof CliError &&
    (error.code === "upload-too-large" || error.code === "too-many-images")
  );
}

/**
 * The error that stopped an add, with what the user needs next: which file the edge refused
 * (when its detail names an entry of the request), what the dataset holds now, and how to add
 * the rest.
 */
function stopped(
  error: unknown,
  at: {
    datasetId: string;
    batch: Entry[];
    sending: string;
    skip: number;
    added: number;
    options: AddOptions;
  },
): unknown {
  if (!(error instanceof CliError)) return error;
  const done = at.skip + at.added;
  const named = at.batch.find((e) => error.message.includes(JSON.stringify(e.name)));
  const lines = [
    error.hint,
    named ? `the file: ${named.image.path}` : undefined,
    tooLarge(error)
      ? "this edge's limits are lower than --max-images/--max-bytes: pass smaller ones"
      : undefined,
    at.added === 0
      ? `${at.sending} was not added; nothing was added to dataset ${at.datasetId} by this run`
      : `${at.sending} was not added; images ${at.skip + 1}–${done} (sent before it) are in dataset ${at.datasetId}, nothing after them`,
    `add the rest: ${at.options.resume(done)}`,
  ];
  return new CliError(error.message, error.exitCode, {
    code: error.code,
    hint: lines.filter((line) => line !== undefined).join("\n  → "),
  });
}
