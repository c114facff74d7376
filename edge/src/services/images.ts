/**
 * Uploaded images: checked by their bytes (never by the declared type), then stored all or
 * nothing: every object is put in R2 first and the rows are inserted in one D1 batch, and if
 * either step fails the objects already put are deleted again.
 */
import { bucketKeys, FormatError, sha256Hex } from "@revq/shared";
import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import { images } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { newId } from "./ids.ts";
import { IMAGE_MEDIA_TYPES, type ImageInfo, readImageHeader } from "./image-header.ts";

export type CheckedImage = ImageInfo & { bytes: Uint8Array; sha256: string };

export type ImageRow = typeof images.$inferSelect;

/** Status of each image format problem: not an image we take (415) or a broken one (400). */
const STATUS_OF: Record<string, 400 | 415> = { "unknown-format": 415 };

/** Declared types that claim nothing about the format. */
const NEUTRAL_TYPES = new Set(["", "application/octet-stream"]);

/**
 * Checks one image: not empty, within the byte limit, a PNG, JPEG or WebP whose header reads,
 * of the declared type (if it names one), within the pixel limit. `label` says which image in
 * the messages ("the body", "part 3 (cat.png)").
 */
export async function checkImage(
  bytes: Uint8Array,
  declaredType: string,
  config: Config,
  label: string,
): Promise<CheckedImage> {
  if (bytes.length === 0) throw new HttpProblem(400, "image.empty", `${label} is empty.`);
  if (bytes.length > config.maxImageBytes) {
    throw new HttpProblem(
      413,
      "image.too-large",
      `${label} has ${bytes.length} bytes; the limit is ${config.maxImageBytes} per image.`,
    );
  }
  let info: ImageInfo;
  try {
    info = readImageHeader(bytes);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    const status = STATUS_OF[error.code] ?? 400;
    throw new HttpProblem(
      status,
      `image.${error.code}`,
      `${label}: ${error.message.replace(/^image: /, "")}.`,
    );
  }
  const declared = declaredType.split(";")[0].trim().toLowerCase();
  if (!NEUTRAL_TYPES.has(declared) && declared !== IMAGE_MEDIA_TYPES[info.format]) {
    throw new HttpProblem(
      415,
      "image.type-mismatch",
      `${label} is declared as ${declared} but its bytes are a ${info.format.toUpperCase()} image.`,
    );
  }
  const pixels = info.width * info.height;
  if (pixels > config.maxImagePixels) {
    throw new HttpProblem(
      422,
      "image.too-many-pixels",
      `${label} is ${info.width}×${info.height} = ${pixels} pixels; the limit is ${config.maxImagePixels}.`,
    );
  }
  return { ...info, bytes, sha256: await sha256Hex(bytes) };
}

/** Stores checked images for a tenant: all of them, or (on any failure) none. */
export async function storeImages(
  env: Env,
  db: Db,
  tenantId: string,
  checked: CheckedImage[],
): Promise<ImageRow[]> {
  const now = Date.now();
  const rows: ImageRow[] = checked.map((image) => {
    const id = newId("img", now);
    return {
      id,
      tenantId,
      bucketKey: bucketKeys.image(tenantId, id),
      format: image.format,
      width: image.width,
      height: image.height,
      bytes: image.bytes.length,
      sha256: image.sha256,
      createdAt: now,
    };
  });
  const put = await Promise.allSettled(
    rows.map((row, i) =>
      env.BUCKET.put(row.bucketKey, checked[i].bytes, {
        httpMetadata: { contentType: IMAGE_MEDIA_TYPES[row.format] },
        sha256: row.sha256,
      }),
    ),
  );
  try {
    const failed = put.find((p) => p.status === "rejected");
    if (failed) throw failed.reason;
    const [first, ...rest] = rows.map((row) => db.insert(images).values(row));
    await db.batch([first, ...rest]);
  } catch (error) {
    await env.BUCKET.delete(rows.map((row) => row.bucketKey));
    throw error;
  }
  return rows;
}
