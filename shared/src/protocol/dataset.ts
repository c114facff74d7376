/**
 * Datasets as the worker reads them. The edge freezes a training set into a listing (every image's
 * bucket key and ETag, in order) written once to the bucket under the SHA-256 of its bytes, so a
 * listing is its own identity: the same images in the same order give the same hash, and latents
 * extracted from it under one VAE are found again by every later training (bucketKeys.latents).
 */
import * as z from "zod";
import { FormatError } from "../errors.ts";
import { canonicalJson } from "./canonical-json.ts";
import type { TokenizerManifest } from "./manifest.ts";
import { sha256Hex } from "./sha256.ts";

export const DATASET_LISTING_FORMAT = "revq.dataset/v1";

/** Most images one dataset (and so one training) may hold. docs/api.md gives the reasons. */
export const MAX_DATASET_IMAGES = 50_000;

/** Images per latent shard: the unit that extraction resumes, shares between workers and reuses. */
export const LATENT_SHARD_SIZE = 256;

/**
 * Images per token shard of a dataset encode job, by default: the unit one worker leases, retries
 * and the bucket reuses. A job may choose within the bounds: below, the tasks' overhead dominates;
 * above, one lease holds a worker long and one shard is a big download.
 */
export const TOKEN_SHARD_SIZE = 256;
export const MIN_TOKEN_SHARD_SIZE = 1;
export const MAX_TOKEN_SHARD_SIZE = 4096;
/** Most shards one dataset encode job may be cut into: its shard jobs are created in one D1 batch. */
export const MAX_TOKEN_SHARDS = 500;

export const DatasetEntry = z.strictObject({
  /** The image's bucket key. */
  key: z.string().min(1).max(1024),
  /** Its ETag when listed (the SHA-256 for uploads): a changed file makes a new listing. */
  etag: z.string().min(1).max(200),
});
export type DatasetEntry = z.infer<typeof DatasetEntry>;

export const DatasetListing = z.strictObject({
  format: z.literal(DATASET_LISTING_FORMAT),
  images: z.array(DatasetEntry).min(1).max(MAX_DATASET_IMAGES),
});
export type DatasetListing = z.infer<typeof DatasetListing>;

/** The listing's bytes (canonical JSON) and their SHA-256, its identity. */
export async function encodeDatasetListing(
  images: DatasetEntry[],
): Promise<{ bytes: Uint8Array; hash: string }> {
  const listing: DatasetListing = { format: DATASET_LISTING_FORMAT, images };
  const bytes = new TextEncoder().encode(canonicalJson(listing));
  return { bytes, hash: await sha256Hex(bytes) };
}

/** A stored listing, checked against the hash it is stored under. */
export async function parseDatasetListing(
  bytes: Uint8Array,
  expectedHash: string,
): Promise<DatasetListing> {
  const hash = await sha256Hex(bytes);
  if (hash !== expectedHash) {
    throw new FormatError(
      "dataset",
      "bad-hash",
      `the dataset listing's SHA-256 is ${hash}, not ${expectedHash}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch (error) {
    throw new FormatError("dataset", "bad-json", `the dataset listing is not JSON: ${error}`);
  }
  const parsed = DatasetListing.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FormatError(
      "dataset",
      "bad-listing",
      `the dataset listing is malformed at ${issue.path.join(".") || "its root"}: ${issue.message}`,
    );
  }
  return parsed.data;
}

/** The shards a listing of `count` images is cut into (latent or token shards). */
export function latentShardCount(count: number, shardSize = LATENT_SHARD_SIZE): number {
  return Math.ceil(count / shardSize);
}

/** Images in shard `index` of a listing of `count`: all but the last shard are full. */
export function shardLength(count: number, shardSize: number, index: number): number {
  return Math.max(0, Math.min(shardSize, count - index * shardSize));
}

/** A VAE's identity for latent reuse: the SHA-256 of its manifest entry (kind, config, weights). */
export function vaeHash(vae: TokenizerManifest["vae"]): Promise<string> {
  return sha256Hex(canonicalJson(vae));
}
