/**
 * Images from the command line: files as given, folders searched (recursively) for PNG, JPEG and
 * WebP by extension, in a stable order. Uploaded in multipart batches under the edge's default
 * limits (docs/api.md, "Limits"), each batch with its own Idempotency-Key; dataset-upload.ts
 * sends them to a dataset instead.
 */

import { randomUUID } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, extname, join } from "node:path";
import { UploadedImages } from "@revq/shared";
import type { Api } from "./api.ts";
import { usageError } from "./errors.ts";
import type { Output } from "./output.ts";
import type { Progress } from "./progress.ts";

export type BatchLimits = { items: number; bytes: number };

const EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".webp"]);
/** MAX_IMAGES_PER_REQUEST and, with room for the multipart framing, MAX_UPLOAD_BYTES. */
const UPLOAD_LIMITS: BatchLimits = { items: 64, bytes: 60 * 1024 * 1024 };

export type LocalImage = { path: string; bytes: number };
export type UploadedImage = LocalImage & { id: string; width: number; height: number };

/** The images of `args`; each folder's search is told on `out`, since it went into subfolders. */
export async function collectImages(args: string[], out?: Output): Promise<LocalImage[]> {
  if (args.length === 0) throw usageError("no images given", "name image files or folders");
  const found: LocalImage[] = [];
  for (const arg of args) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(arg);
    } catch {
      throw usageError(`${arg}: no such file or folder`);
    }
    if (info.isDirectory()) {
      const inFolder = await imagesIn(arg);
      if (inFolder.length === 0) {
        throw usageError(`${arg}: no .png, .jpg, .jpeg or .webp files in this folder`);
      }
      out?.note(`${arg}: ${foundIn(inFolder)}`);
      found.push(...inFolder);
    } else {
      found.push({ path: arg, bytes: info.size });
    }
  }
  return found;
}

/** "22 images in 3 folders". */
export function foundIn(images: LocalImage[]): string {
  const folders = new Set(images.map((image) => dirname(image.path))).size;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `${plural(images.length, "image")} in ${plural(folders, "folder")}`;
}

async function imagesIn(dir: string): Promise<LocalImage[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const files = entries
    .filter((e) => e.isFile() && EXTENSIONS.has(extname(e.name).toLowerCase()))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  return Promise.all(files.map(async (path) => ({ path, bytes: (await stat(path)).size })));
}

/**
 * Consecutive batches of at most `limits.items` items and `limits.bytes` bytes (as `bytesOf`
 * counts them), in order. An item over the byte budget alone still makes a batch of its own.
 */
export function batches<T>(items: T[], limits: BatchLimits, bytesOf: (item: T) => number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = bytesOf(item);
    if (current.length > 0 && (current.length === limits.items || bytes + size > limits.bytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export async function uploadImages(
  api: Api,
  images: LocalImage[],
  progress: Progress,
): Promise<UploadedImage[]> {
  const uploaded: UploadedImage[] = [];
  progress.update(0, images.length);
  for (const batch of batches(images, UPLOAD_LIMITS, (image) => image.bytes)) {
    const form = new FormData();
    for (const image of batch) {
      const bytes = await readFile(image.path);
      form.append("images", new Blob([bytes]), image.path);
    }
    const answer = await api.json("POST", "/v1/images", UploadedImages, {
      body: form,
      idempotencyKey: randomUUID(),
    });
    answer.images.forEach((image, i) => {
      uploaded.push({ ...batch[i], id: image.id, width: image.width, height: image.height });
    });
    progress.update(uploaded.length, images.length);
  }
  return uploaded;
}
