/**
 * The images of one shard of a frozen dataset listing, for an encode task. The listing froze each
 * image's ETag; an image whose bytes no longer match it (a prefix file replaced while the job
 * ran) is not the one the job was created on, so the task fails for good instead of encoding it.
 */
import { createHash } from "node:crypto";
import { type DatasetShard, shardLength } from "@revq/shared";
import type { Bucket } from "../storage.ts";
import { TaskError } from "../task-error.ts";
import { readListing } from "./train-io.ts";

/** One image to encode: its key, how errors name it, the format wording, and a check of its bytes. */
export type EncodeSource = {
  key: string;
  what: string;
  expected: string;
  check?: (bytes: Uint8Array) => void;
};

/**
 * The hash an ETag is of, where it says: an upload's is its SHA-256 (64 hex digits), a file put in
 * one piece has R2's MD5 (32); a multipart ETag ("...-N") checks nothing.
 */
function etagAlgorithm(etag: string): "sha256" | "md5" | undefined {
  const plain = etag.replace(/^"|"$/g, "");
  if (/^[0-9a-f]{64}$/.test(plain)) return "sha256";
  if (/^[0-9a-f]{32}$/.test(plain)) return "md5";
  return undefined;
}

function etagCheck(etag: string, what: string): EncodeSource["check"] {
  const algorithm = etagAlgorithm(etag);
  if (!algorithm) return undefined;
  const expected = etag.replace(/^"|"$/g, "");
  return (bytes) => {
    const actual = createHash(algorithm).update(bytes).digest("hex");
    if (actual !== expected) {
      throw new TaskError(
        "dataset-changed",
        `${what} changed after the job froze the dataset (its ${algorithm} is ${actual}, the listing's ${expected}); create the job again.`,
        false,
      );
    }
  };
}

export async function shardSources(
  bucket: Bucket,
  shard: DatasetShard,
  signal: AbortSignal,
): Promise<EncodeSource[]> {
  const length = shardLength(shard.count, shard.shardSize, shard.index);
  if (length === 0) {
    throw new TaskError(
      "shard-out-of-range",
      `Shard ${shard.index} is not one of the dataset's (${shard.count} images, ${shard.shardSize} a shard).`,
      false,
    );
  }
  const listing = await readListing(bucket, shard, signal);
  const first = shard.index * shard.shardSize;
  return listing.images.slice(first, first + length).map((entry, i) => {
    const what = `image ${first + i} (${entry.key})`;
    return { key: entry.key, what, expected: "an image", check: etagCheck(entry.etag, what) };
  });
}
