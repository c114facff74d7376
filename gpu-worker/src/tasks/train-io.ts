/**
 * What the extract and train tasks read and write in the bucket: a dataset's checked listing,
 * its images as an ImageSource, and BlobStores under a prefix (latent shards, training state).
 */
import {
  type DatasetListing,
  type DatasetRef,
  FormatError,
  parseDatasetListing,
  type TokenizerManifest,
  vaeHash,
} from "@revq/shared";
import type { ImageSize } from "../models/vae.ts";
import type { Bucket } from "../storage.ts";
import { TaskError } from "../task-error.ts";
import type { ImageSource } from "../train/extract.ts";
import type { BlobStore } from "../train/store.ts";
import { readImage, readObject, writeObject } from "./io.ts";

/**
 * The listing the task names, checked against its hash and image count: anything else is not the
 * dataset the job was created on, and never will be (not retryable).
 */
export async function readListing(
  bucket: Bucket,
  dataset: Pick<DatasetRef, "listing" | "listingHash" | "count">,
  signal: AbortSignal,
): Promise<DatasetListing> {
  const bytes = await readObject(bucket, dataset.listing, "the dataset listing", signal);
  let listing: DatasetListing;
  try {
    listing = await parseDatasetListing(bytes, dataset.listingHash);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    throw new TaskError(
      "dataset-listing-invalid",
      `The dataset listing at ${dataset.listing} is unusable: ${error.message}`,
      false,
    );
  }
  if (listing.images.length !== dataset.count) {
    throw new TaskError(
      "dataset-listing-invalid",
      `The dataset listing at ${dataset.listing} holds ${listing.images.length} images, not the task's ${dataset.count}.`,
      false,
    );
  }
  return listing;
}

/** The listing's images, image i from its entry's key. */
export function datasetImages(
  bucket: Bucket,
  listing: DatasetListing,
  size: ImageSize,
  signal: AbortSignal,
): ImageSource {
  return {
    count: listing.images.length,
    load: (index) => {
      const { key } = listing.images[index];
      return readImage(bucket, key, size, `image ${index} (${key})`, "an image", signal);
    },
  };
}

/**
 * What a dataset's latents under a VAE are of, recorded in every shard and checkpoint made from
 * them: `<listing hash>/<VAE hash>`, as the latents' bucket prefix names them.
 */
export async function latentIdentity(
  dataset: DatasetRef,
  vae: TokenizerManifest["vae"],
): Promise<string> {
  return `${dataset.listingHash}/${await vaeHash(vae)}`;
}

/** Objects under `prefix` (a key ending in /); a missing one reads as null. */
export function bucketStore(bucket: Bucket, prefix: string, signal: AbortSignal): BlobStore {
  return {
    read: (name) =>
      readObject(bucket, prefix + name, name, signal).catch((error: unknown) => {
        if (error instanceof TaskError && error.code === "input-missing") return null;
        throw error;
      }),
    write: (name, bytes) =>
      writeObject(bucket, prefix + name, bytes, "application/octet-stream", name, signal),
  };
}
