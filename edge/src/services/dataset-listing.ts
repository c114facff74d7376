/**
 * Freezing a training set for a train job: its images as a listing (shared's dataset.ts) written
 * once to the bucket under its own hash, and the place of its latents under the job's VAE, where
 * shards already extracted by earlier jobs are found and reused.
 */
import {
  bucketKeys,
  type DatasetEntry,
  type DatasetRef,
  encodeDatasetListing,
  latentShardCount,
  latentShardName,
  type TokenizerManifest,
  vaeHash,
} from "@revq/shared";
import { and, asc, eq, gt } from "drizzle-orm";
import type { Config } from "../config.ts";
import { chunked, type Db } from "../db/client.ts";
import { datasetImages, images } from "../db/schema.ts";
import { HttpProblem } from "../problem.ts";
import type { DatasetRow } from "./datasets.ts";

/** Rows read from D1 per query while listing an upload dataset. */
const PAGE = 5000;

/** The files of a prefix dataset that are images, by name. */
const IMAGE_NAME = /\.(png|jpe?g|webp)$/i;

function tooLarge(what: string, max: number): HttpProblem {
  return new HttpProblem(
    422,
    "dataset-too-large",
    `${what} more than ${max} images; a training takes at most ${max}.`,
  );
}

/** An upload dataset's images in the order they were added: bucket key and SHA-256. */
async function uploadEntries(db: Db, dataset: DatasetRow): Promise<DatasetEntry[]> {
  const entries: DatasetEntry[] = [];
  for (let after = -1; ; ) {
    const rows = await db
      .select({ position: datasetImages.position, key: images.bucketKey, etag: images.sha256 })
      .from(datasetImages)
      .innerJoin(images, eq(images.id, datasetImages.imageId))
      .where(and(eq(datasetImages.datasetId, dataset.id), gt(datasetImages.position, after)))
      .orderBy(asc(datasetImages.position))
      .limit(PAGE);
    entries.push(...rows.map(({ key, etag }) => ({ key, etag })));
    if (rows.length < PAGE) return entries;
    after = rows[rows.length - 1].position;
  }
}

/**
 * The image files under a prefix dataset's path now, sorted by key, each with the ETag R2 lists
 * (a file replaced later gets a new ETag, and so the dataset a new listing).
 */
async function prefixEntries(
  bucket: R2Bucket,
  dataset: DatasetRow,
  max: number,
): Promise<DatasetEntry[]> {
  const prefix = bucketKeys.tenantFiles(dataset.tenantId, dataset.prefix as string);
  const entries: DatasetEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, limit: 1000 });
    for (const object of page.objects) {
      if (IMAGE_NAME.test(object.key)) entries.push({ key: object.key, etag: object.etag });
    }
    if (entries.length > max) throw tooLarge(`The files under ${JSON.stringify(prefix)} are`, max);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** A dataset's images as they are now, in their training order. */
export async function datasetEntries(
  bucket: R2Bucket,
  db: Db,
  config: Config,
  dataset: DatasetRow,
): Promise<DatasetEntry[]> {
  const entries =
    dataset.source === "upload"
      ? await uploadEntries(db, dataset)
      : await prefixEntries(bucket, dataset, config.maxDatasetImages);
  if (entries.length === 0) {
    throw new HttpProblem(
      422,
      "dataset-empty",
      dataset.source === "upload"
        ? `Dataset ${dataset.id} has no images yet: add some with POST /v1/datasets/${dataset.id}/images.`
        : `Dataset ${dataset.id} has no image files (.png, .jpg, .jpeg, .webp) under its prefix ${JSON.stringify(dataset.prefix)}.`,
    );
  }
  if (entries.length > config.maxDatasetImages) {
    throw tooLarge(`Dataset ${dataset.id} has`, config.maxDatasetImages);
  }
  return entries;
}

/**
 * Writes the listing of `entries` (unless the same listing is already there: it is content-
 * addressed, and immutable once written) and says where the latents of its images under `vae`
 * go. The listing is written before the job's rows: were those to fail, it is left as a correct
 * object that the next identical job uses.
 */
export async function freezeDataset(
  bucket: R2Bucket,
  tenantId: string,
  entries: DatasetEntry[],
  vae: TokenizerManifest["vae"],
  config: Config,
): Promise<DatasetRef> {
  const { bytes, hash } = await encodeDatasetListing(entries);
  const listing = bucketKeys.datasetListing(tenantId, hash);
  if (!(await bucket.head(listing))) {
    await bucket.put(listing, bytes, {
      httpMetadata: { contentType: "application/json" },
      sha256: hash,
    });
  }
  const shardSize = config.latentShardSize;
  return {
    listing,
    listingHash: hash,
    count: entries.length,
    latents: bucketKeys.latents(tenantId, hash, await vaeHash(vae), shardSize),
    shardSize,
  };
}

/** The indices of the dataset's latent shards that are not in the bucket yet. */
export async function missingShards(bucket: R2Bucket, dataset: DatasetRef): Promise<number[]> {
  const present = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: dataset.latents, cursor, limit: 1000 });
    for (const object of page.objects) present.add(object.key.slice(dataset.latents.length));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  const count = latentShardCount(dataset.count, dataset.shardSize);
  return Array.from({ length: count }, (_, i) => i).filter((i) => !present.has(latentShardName(i)));
}

/**
 * The missing shards cut into extract jobs of `perJob` shards each, for other workers to do in
 * parallel. A single missing shard is left to the train task itself: an extract job for it would
 * only race the training worker for the same work.
 */
export function extractGroups(missing: number[], perJob: number): number[][] {
  return missing.length < 2 ? [] : chunked(missing, perJob);
}
