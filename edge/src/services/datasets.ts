/**
 * Datasets: a tenant's named training sets. An upload dataset grows by whole requests of images,
 * each all or nothing; a prefix dataset names a path under the tenant's own files and is only
 * read when a train job freezes it (dataset-listing.ts).
 */
import { bucketKeys } from "@revq/shared";
import { and, asc, desc, eq, gt, inArray, lt } from "drizzle-orm";
import type { Config } from "../config.ts";
import { chunked, D1_MAX_PARAMS, type Db } from "../db/client.ts";
import { datasetImages, datasets, images } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { isoTime } from "../schemas/common.ts";
import {
  decodeCursor,
  decodePositionCursor,
  encodeCursor,
  encodePositionCursor,
} from "./cursor.ts";
import { newId } from "./ids.ts";
import {
  type CheckedImage,
  ImagePuts,
  type ImageRow,
  imageInsertStatements,
  imageView,
  tenantImages,
} from "./images.ts";
import { ID_CHUNK } from "./job-limits.ts";

export type DatasetRow = typeof datasets.$inferSelect;

export function datasetView(row: DatasetRow) {
  return {
    id: row.id,
    name: row.name,
    source: row.source,
    prefix: row.prefix,
    imageCount: row.imageCount,
    bytes: row.bytes,
    createdAt: isoTime(row.createdAt),
    updatedAt: isoTime(row.updatedAt),
  };
}

export async function createDataset(
  db: Db,
  tenantId: string,
  body: { name: string; prefix?: string },
): Promise<DatasetRow> {
  const { name, prefix } = body;
  if (prefix !== undefined) {
    try {
      bucketKeys.tenantFiles(tenantId, prefix);
    } catch (error) {
      throw new HttpProblem(
        422,
        "invalid-prefix",
        `The prefix cannot name the tenant's files: ${(error as Error).message.replace(/^bucket key: /, "")}.`,
      );
    }
  }
  const now = Date.now();
  const upload = prefix === undefined;
  const row: DatasetRow = {
    id: newId("dst", now),
    tenantId,
    name,
    source: upload ? "upload" : "prefix",
    prefix: prefix ?? null,
    // A prefix dataset's files come and go through the S3 door: they are counted when frozen.
    imageCount: upload ? 0 : null,
    bytes: upload ? 0 : null,
    createdAt: now,
    updatedAt: now,
  };
  await db.insert(datasets).values(row);
  return row;
}

export async function findDataset(db: Db, tenantId: string, id: string): Promise<DatasetRow> {
  const [row] = await db
    .select()
    .from(datasets)
    .where(and(eq(datasets.id, id), eq(datasets.tenantId, tenantId)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "dataset-not-found", `No dataset ${id}.`);
  return row;
}

/** A page of the tenant's datasets, newest first. */
export async function listDatasets(
  db: Db,
  tenantId: string,
  page: { limit: number; cursor?: string },
) {
  const conditions = [eq(datasets.tenantId, tenantId)];
  if (page.cursor) conditions.push(lt(datasets.id, decodeCursor(page.cursor)));
  const rows = await db
    .select()
    .from(datasets)
    .where(and(...conditions))
    .orderBy(desc(datasets.id))
    .limit(page.limit + 1);
  const shown = rows.slice(0, page.limit);
  return {
    datasets: shown.map(datasetView),
    nextCursor: rows.length > page.limit ? encodeCursor(shown[shown.length - 1].id) : null,
  };
}

/** Deletes the dataset and its membership rows; the images themselves stay. */
export async function deleteDataset(db: Db, tenantId: string, id: string): Promise<void> {
  const dataset = await findDataset(db, tenantId, id);
  await db.batch([
    db.delete(datasetImages).where(eq(datasetImages.datasetId, dataset.id)),
    db.delete(datasets).where(eq(datasets.id, dataset.id)),
  ]);
}

/** Refuses a prefix dataset where only an upload one will do: its images are its prefix's files. */
export function checkUploadDataset(dataset: DatasetRow): void {
  if (dataset.source !== "upload") {
    throw new HttpProblem(
      409,
      "dataset-not-upload",
      `Dataset ${dataset.id} is the tenant's files under ${JSON.stringify(dataset.prefix)}: put images there, and list them, through the S3 API.`,
    );
  }
}

function checkRoom(dataset: DatasetRow, adding: number, config: Config): void {
  const count = dataset.imageCount ?? 0;
  if (count + adding > config.maxDatasetImages) {
    throw new HttpProblem(
      422,
      "dataset-full",
      `Dataset ${dataset.id} has ${count} images; adding ${adding} would pass the limit of ${config.maxDatasetImages} per dataset.`,
    );
  }
}

export type Added = { added: string[]; dataset: DatasetRow };

/**
 * Adds images to an upload dataset in one D1 batch: the rows of images just put in R2 (`created`),
 * then every member at the next positions, then the dataset's totals. Positions start at the
 * count read before: had another request added images since, the positions collide, the batch
 * rolls back and this one is refused, so the room checked before is never exceeded.
 */
async function commit(
  db: Db,
  dataset: DatasetRow,
  members: ImageRow[],
  created: ImageRow[],
): Promise<Added> {
  const now = Date.now();
  const base = dataset.imageCount ?? 0;
  const bytes = members.reduce((sum, image) => sum + image.bytes, 0);
  const memberships = chunked(
    members.map((image, i) => ({ datasetId: dataset.id, imageId: image.id, position: base + i })),
    Math.floor(D1_MAX_PARAMS / 3),
  ).map((chunk) => db.insert(datasetImages).values(chunk));
  const totals = {
    imageCount: base + members.length,
    bytes: (dataset.bytes ?? 0) + bytes,
    updatedAt: now,
  };
  const [first, ...rest] = [
    ...imageInsertStatements(db, created),
    ...memberships,
    db.update(datasets).set(totals).where(eq(datasets.id, dataset.id)),
  ];
  try {
    await db.batch([first, ...rest]);
  } catch (error) {
    const [current] = await db.select().from(datasets).where(eq(datasets.id, dataset.id)).limit(1);
    if (!current) {
      throw new HttpProblem(
        404,
        "dataset-not-found",
        `Dataset ${dataset.id} was deleted while the images were being added; nothing was added.`,
      );
    }
    if (current.imageCount !== dataset.imageCount) {
      throw new HttpProblem(
        409,
        "dataset-changed",
        `Another request added images to dataset ${dataset.id} meanwhile; nothing was added. Send the request again.`,
        { headers: { "retry-after": "1" } },
      );
    }
    throw error;
  }
  return { added: members.map((image) => image.id), dataset: { ...dataset, ...totals } };
}

/**
 * Stores uploaded images as they come (each already checked) and adds them to the dataset: all
 * of them, or, on any failure, none, with every object already put deleted again.
 */
export async function addUploads(
  env: Env,
  db: Db,
  config: Config,
  dataset: DatasetRow,
  images: AsyncIterable<CheckedImage> | Iterable<CheckedImage>,
): Promise<Added> {
  const puts = new ImagePuts(env, dataset.tenantId);
  try {
    for await (const image of images) {
      checkRoom(dataset, puts.rows.length + 1, config);
      await puts.add(image);
    }
    const rows = await puts.settle();
    if (rows.length === 0) {
      throw new HttpProblem(
        422,
        "no-images",
        "The request holds no images (directories, links and hidden files are skipped).",
      );
    }
    return await commit(db, dataset, rows, rows);
  } catch (error) {
    await puts.discard();
    throw error;
  }
}

/** Adds images the tenant already uploaded, by id, in the order given. */
export async function addExisting(
  db: Db,
  config: Config,
  dataset: DatasetRow,
  ids: string[],
): Promise<Added> {
  const rows = await tenantImages(db, dataset.tenantId, ids);
  const present: string[] = [];
  for (const chunk of chunked(ids, ID_CHUNK)) {
    const found = await db
      .select({ id: datasetImages.imageId })
      .from(datasetImages)
      .where(and(eq(datasetImages.datasetId, dataset.id), inArray(datasetImages.imageId, chunk)));
    present.push(...found.map((row) => row.id));
  }
  if (present.length > 0) {
    throw new HttpProblem(
      409,
      "image-already-in-dataset",
      `${present.length} of the images are already in dataset ${dataset.id}: ${present.slice(0, 5).join(", ")}${present.length > 5 ? ", ..." : ""}.`,
    );
  }
  checkRoom(dataset, rows.length, config);
  return commit(db, dataset, rows, []);
}

/** A page of an upload dataset's images, in the order they were added. */
export async function listDatasetImages(
  db: Db,
  dataset: DatasetRow,
  page: { limit: number; cursor?: string },
) {
  checkUploadDataset(dataset);
  const conditions = [eq(datasetImages.datasetId, dataset.id)];
  if (page.cursor) conditions.push(gt(datasetImages.position, decodePositionCursor(page.cursor)));
  const rows = await db
    .select({ position: datasetImages.position, image: images })
    .from(datasetImages)
    .innerJoin(images, eq(images.id, datasetImages.imageId))
    .where(and(...conditions))
    .orderBy(asc(datasetImages.position))
    .limit(page.limit + 1);
  const shown = rows.slice(0, page.limit);
  return {
    images: shown.map((row) => imageView(row.image)),
    nextCursor:
      rows.length > page.limit ? encodePositionCursor(shown[shown.length - 1].position) : null,
  };
}
