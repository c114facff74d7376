/**
 * The bucket keys of datasets: tenant files only under plain relative paths, listings and latent
 * shards only under hashes, shard names that sort in shard order.
 */
import { describe, expect, it } from "vitest";
import { bucketKeys, latentShardName } from "../../shared/src/protocol/bucket-keys.ts";

const TENANT = "ten_00000000000000000000000000";
const HASH = "0123456789abcdef".repeat(4);
const VAE = "f".repeat(64);

describe("dataset bucket keys", () => {
  it("put a tenant's files under its files/ prefix, a folder ending in /", () => {
    expect(bucketKeys.tenantFiles(TENANT, "photos/2024/cat 1.png")).toBe(
      `tenants/${TENANT}/files/photos/2024/cat 1.png`,
    );
    expect(bucketKeys.tenantFiles(TENANT, "photos/")).toBe(`tenants/${TENANT}/files/photos/`);
    expect(bucketKeys.tenantFiles(TENANT, "a/...b/c.d")).toBe(`tenants/${TENANT}/files/a/...b/c.d`);
  });

  it("refuse file paths that could leave the tenant's prefix or name nothing", () => {
    for (const path of [
      "../x",
      "a/../../x",
      "a/..",
      "./a",
      "a/./b",
      ".",
      "/abs",
      "a//b",
      "//",
      "",
      "/",
      "a\\b",
      "a/b\\..\\c",
      "a\nb",
      "x".repeat(513),
    ]) {
      expect(() => bucketKeys.tenantFiles(TENANT, path), JSON.stringify(path)).toThrow(
        /^bucket key: /,
      );
    }
    expect(() => bucketKeys.tenantFiles("ten_../x", "a")).toThrow(/tenant id/);
  });

  it("name a listing and its latents by hashes alone", () => {
    expect(bucketKeys.datasetListing(TENANT, HASH)).toBe(`tenants/${TENANT}/datasets/${HASH}.json`);
    expect(bucketKeys.latents(TENANT, HASH, VAE, 256)).toBe(
      `tenants/${TENANT}/latents/${HASH}/${VAE}/s256/`,
    );
    expect(() => bucketKeys.datasetListing(TENANT, "../x")).toThrow(/listing hash/);
    expect(() => bucketKeys.latents(TENANT, HASH, HASH.toUpperCase(), 256)).toThrow(/VAE hash/);
    for (const size of [0, -1, 1.5, Number.NaN])
      expect(() => bucketKeys.latents(TENANT, HASH, VAE, size)).toThrow(/shard size/);
  });

  it("name shards so that name order is shard order", () => {
    expect(latentShardName(0)).toBe("shard-000000.safetensors");
    expect(latentShardName(42)).toBe("shard-000042.safetensors");
    const names = [0, 9, 10, 99, 100, 999_999].map(latentShardName);
    expect(names.toSorted()).toEqual(names);
    for (const index of [-1, 1.5, 1_000_000, Number.NaN])
      expect(() => latentShardName(index)).toThrow(/shard index/);
  });
});
