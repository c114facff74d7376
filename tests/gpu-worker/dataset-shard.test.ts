/**
 * An encode task's shard of a frozen listing (gpu-worker/src/tasks/dataset-shard.ts): its images
 * in order, and each image's bytes held to the ETag the listing froze, so that a file replaced
 * while the job runs fails the shard for good instead of being encoded.
 */
import { createHash } from "node:crypto";
import { type DatasetEntry, type DatasetShard, encodeDatasetListing } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { BucketError } from "../../gpu-worker/src/storage.ts";
import { TaskError } from "../../gpu-worker/src/task-error.ts";
import { shardSources } from "../../gpu-worker/src/tasks/dataset-shard.ts";

const bytesOf = (i: number) => new TextEncoder().encode(`image ${i}`);
const hex = (algorithm: string, bytes: Uint8Array) =>
  createHash(algorithm).update(bytes).digest("hex");

/** Five images: uploads (SHA-256 ETags), one-piece files (MD5), a multipart file. */
function entries(): DatasetEntry[] {
  return [0, 1, 2, 3, 4].map((i) => ({
    key: `tenants/t/${i < 2 ? "images" : "files"}/${i}`,
    etag: i < 2 ? hex("sha256", bytesOf(i)) : i < 4 ? `"${hex("md5", bytesOf(i))}"` : "abc-2",
  }));
}

async function bucketWith(listing: DatasetEntry[]) {
  const { bytes, hash } = await encodeDatasetListing(listing);
  const objects = new Map([["listing", bytes]]);
  return {
    hash,
    bucket: {
      get: async (key: string) => {
        const found = objects.get(key);
        if (!found) throw new BucketError("not-found", key, "no such key");
        return found;
      },
      put: async () => {},
    },
  };
}

const shard = (hash: string, index: number, shardSize = 2): DatasetShard => ({
  listing: "listing",
  listingHash: hash,
  count: 5,
  shardSize,
  index,
});

const never = new AbortController().signal;

describe("a dataset shard's images", () => {
  it("are the listing's, in order, the last shard short", async () => {
    const { bucket, hash } = await bucketWith(entries());
    const sources = await shardSources(bucket, shard(hash, 1), never);
    expect(sources.map((s) => [s.key, s.what])).toEqual([
      ["tenants/t/files/2", "image 2 (tenants/t/files/2)"],
      ["tenants/t/files/3", "image 3 (tenants/t/files/3)"],
    ]);
    expect((await shardSources(bucket, shard(hash, 2), never)).map((s) => s.key)).toEqual([
      "tenants/t/files/4",
    ]);
  });

  it("are held to the listing's ETags: SHA-256 and MD5 checked, a multipart one cannot be", async () => {
    const { bucket, hash } = await bucketWith(entries());
    const all = await shardSources(bucket, shard(hash, 0, 5), never);
    for (const [i, source] of all.entries()) {
      if (i === 4) {
        expect(source.check).toBeUndefined();
        continue;
      }
      expect(() => source.check?.(bytesOf(i))).not.toThrow();
      let caught: unknown;
      try {
        source.check?.(bytesOf(i + 10));
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TaskError);
      expect(caught).toMatchObject({ code: "dataset-changed", retryable: false });
      expect((caught as Error).message).toMatch(
        new RegExp(`^image ${i} .* changed after the job froze`),
      );
    }
  });

  it("refuse a shard past the listing and a listing of other bytes, for good", async () => {
    const { bucket, hash } = await bucketWith(entries());
    await expect(shardSources(bucket, shard(hash, 3), never)).rejects.toMatchObject({
      code: "shard-out-of-range",
      retryable: false,
    });
    await expect(shardSources(bucket, shard("0".repeat(64), 0), never)).rejects.toMatchObject({
      code: "dataset-listing-invalid",
      retryable: false,
    });
  });
});
