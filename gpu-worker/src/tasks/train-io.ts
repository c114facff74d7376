/**
 * What a train task reads and writes in the bucket: the job's images as an ImageSource, and
 * BlobStores under its checkpoints prefix (latent shards, training state).
 */
import type { ImageInput } from "@revq/shared";
import { decodeImage } from "../images/codec.ts";
import type { ImageSize } from "../pipeline/vae.ts";
import type { Bucket } from "../storage.ts";
import type { ImageSource } from "../train/extract.ts";
import type { BlobStore } from "../train/store.ts";
import { TaskError } from "./errors.ts";
import { readObject, writeObject } from "./io.ts";

export function bucketImages(
  bucket: Bucket,
  images: ImageInput[],
  size: ImageSize,
  signal: AbortSignal,
): ImageSource {
  return {
    count: images.length,
    async load(index) {
      const image = images[index];
      const what = `image ${index} (${image.imageId})`;
      const bytes = await readObject(bucket, image.bucketKey, what, signal);
      try {
        return await decodeImage(bytes, size);
      } catch (error) {
        throw new TaskError(
          "image-undecodable",
          `${what} could not be decoded as ${image.format.toUpperCase()}: ${(error as Error).message}`,
          false,
        );
      }
    },
  };
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
