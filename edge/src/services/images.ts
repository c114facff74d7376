/**
 * Uploaded images: checked by their bytes (never by the declared type), then stored all or
 * nothing: every object is put in R2 first and the rows are inserted in one D1 batch, and if
 * either step fails the objects already put are deleted again. Dataset uploads (datasets.ts) use
 * the same pieces, adding their own rows to the batch.
 */
import { bucketKeys, FormatError, sha256Hex } from "@revq/shared";
import { and, eq, getTableColumns, inArray } from "drizzle-orm";
import type { Config } from "../config.ts";
import { chunked, D1_MAX_PARAMS, type Db } from "../db/client.ts";
import { images } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { isoTime } from "../schemas/common.ts";
import { newId } from "./ids.ts";
import { IMAGE_MEDIA_TYPES, type ImageInfo, readImageHeader } from "./image-header.ts";
import { ID_CHUNK } from "./job-limits.ts";

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

/** R2 puts one upload keeps in flight: enough to hide their latency, few enough that the images
 * waiting in memory stay few. */
const PUTS_IN_FLIGHT = 8;

/** R2 deletes at most this many keys in one call. */
const DELETE_BATCH = 1000;

/**
 * The R2 side of an upload of many images: each checked image is put as soon as it is added, a
 * few at a time, so that a long upload never holds more than a few images in memory; `discard`
 * deletes every object the upload may have written, for when it fails.
 */
export class ImagePuts {
  readonly rows: ImageRow[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private readonly env: Env;
  private readonly tenantId: string;
  private readonly now: number;

  constructor(env: Env, tenantId: string, now = Date.now()) {
    this.env = env;
    this.tenantId = tenantId;
    this.now = now;
  }

  /** Starts storing `image`; waits while too many puts are in flight. */
  async add(image: CheckedImage): Promise<ImageRow> {
    while (this.inFlight.size >= PUTS_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.error;
    const id = newId("img", this.now);
    const row: ImageRow = {
      id,
      tenantId: this.tenantId,
      bucketKey: bucketKeys.image(this.tenantId, id),
      format: image.format,
      width: image.width,
      height: image.height,
      bytes: image.bytes.length,
      sha256: image.sha256,
      createdAt: this.now,
    };
    this.rows.push(row);
    const put: Promise<void> = this.env.BUCKET.put(row.bucketKey, image.bytes, {
      httpMetadata: { contentType: IMAGE_MEDIA_TYPES[row.format] },
      sha256: row.sha256,
    })
      .then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= { error };
        },
      )
      .finally(() => this.inFlight.delete(put));
    this.inFlight.add(put);
    return row;
  }

  /** Waits for every put; throws the first that failed. */
  async settle(): Promise<ImageRow[]> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure.error;
    return this.rows;
  }

  /** Deletes every object added (a failed put may still have written it). */
  async discard(): Promise<void> {
    await Promise.all(this.inFlight);
    const keys = this.rows.map((row) => row.bucketKey);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      await this.env.BUCKET.delete(keys.slice(i, i + DELETE_BATCH));
    }
  }
}

const IMAGE_COLUMNS = Object.keys(getTableColumns(images)).length;

/** An image as the client API shows it (@revq/shared's Image). */
export function imageView(row: ImageRow) {
  return {
    id: row.id,
    format: row.format,
    mediaType: IMAGE_MEDIA_TYPES[row.format],
    width: row.width,
    height: row.height,
    bytes: row.bytes,
    sha256: row.sha256,
    createdAt: isoTime(row.createdAt),
  };
}

/** The inserts of image rows, as few statements as D1's bound-parameter limit allows. */
export function imageInsertStatements(db: Db, rows: ImageRow[]) {
  return chunked(rows, Math.floor(D1_MAX_PARAMS / IMAGE_COLUMNS)).map((chunk) =>
    db.insert(images).values(chunk),
  );
}

/** Stores checked images for a tenant: all of them, or (on any failure) none. */
export async function storeImages(
  env: Env,
  db: Db,
  tenantId: string,
  checked: CheckedImage[],
): Promise<ImageRow[]> {
  const puts = new ImagePuts(env, tenantId);
  try {
    for (const image of checked) await puts.add(image);
    const [first, ...rest] = imageInsertStatements(db, await puts.settle());
    await db.batch([first, ...rest]);
  } catch (error) {
    await puts.discard();
    throw error;
  }
  return puts.rows;
}

/** The tenant's images with these ids, in the order given; a 422 names any that do not exist. */
export async function tenantImages(db: Db, tenantId: string, ids: string[]): Promise<ImageRow[]> {
  const found = new Map<string, ImageRow>();
  for (const chunk of chunked(ids, ID_CHUNK)) {
    const rows = await db
      .select()
      .from(images)
      .where(and(eq(images.tenantId, tenantId), inArray(images.id, chunk)));
    for (const row of rows) found.set(row.id, row);
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(", ");
    throw new HttpProblem(
      422,
      "image-not-found",
      `${missing.length} of the images do not exist: ${shown}${missing.length > 5 ? ", ..." : ""}.`,
    );
  }
  return ids.map((id) => found.get(id) as ImageRow);
}
