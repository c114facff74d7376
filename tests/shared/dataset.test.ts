/**
 * Dataset listings: their bytes and hash depend only on the images and their order, a stored
 * listing is accepted only under its own hash, and a malformed one says where it is wrong.
 */
import { describe, expect, it } from "vitest";
import { FormatError } from "../../shared/src/errors.ts";
import {
  DATASET_LISTING_FORMAT,
  encodeDatasetListing,
  LATENT_SHARD_SIZE,
  latentShardCount,
  MAX_DATASET_IMAGES,
  parseDatasetListing,
  vaeHash,
} from "../../shared/src/protocol/dataset.ts";
import type { TokenizerManifest } from "../../shared/src/protocol/manifest.ts";
import { sha256Hex } from "../../shared/src/protocol/sha256.ts";

const TENANT = "tenants/ten_00000000000000000000000000";
const entries = (n: number, etag = (i: number) => `"${i.toString(16).padStart(64, "0")}"`) =>
  Array.from({ length: n }, (_, i) => ({ key: `${TENANT}/files/set/${i}.png`, etag: etag(i) }));

/** Runs f and returns the FormatError it rejects with; anything else fails the test. */
async function rejection(f: () => Promise<unknown>): Promise<FormatError> {
  const error = await f().then(
    () => new Error("expected a FormatError, the call succeeded"),
    (e: unknown) => e,
  );
  if (error instanceof FormatError) return error;
  throw error;
}

describe("dataset listings", () => {
  it("are canonical JSON whose SHA-256 is their identity, the same for the same images", async () => {
    const a = await encodeDatasetListing(entries(3));
    const b = await encodeDatasetListing(entries(3).map(({ etag, key }) => ({ etag, key })));
    expect(a.hash).toBe(b.hash);
    expect(a.bytes).toEqual(b.bytes);
    expect(a.hash).toBe(await sha256Hex(a.bytes));
    // Pinned: a change to the encoding would orphan every stored listing and latent shard.
    expect(new TextDecoder().decode((await encodeDatasetListing(entries(1))).bytes)).toBe(
      `{"format":"${DATASET_LISTING_FORMAT}","images":[{"etag":"\\"${"0".repeat(64)}\\"","key":"${TENANT}/files/set/0.png"}]}`,
    );
    expect(await parseDatasetListing(a.bytes, a.hash)).toEqual({
      format: DATASET_LISTING_FORMAT,
      images: entries(3),
    });
  });

  it("change identity with the order, a file's ETag, or one image more", async () => {
    const base = (await encodeDatasetListing(entries(3))).hash;
    const others = [
      entries(3).reverse(),
      entries(3, (i) => (i === 1 ? "changed" : `"${i.toString(16).padStart(64, "0")}"`)),
      entries(4),
    ];
    for (const images of others) expect((await encodeDatasetListing(images)).hash).not.toBe(base);
  });

  it("are refused under another hash: a tampered listing never passes for the frozen one", async () => {
    const { bytes, hash } = await encodeDatasetListing(entries(3));
    const tampered = bytes.slice();
    tampered[tampered.length - 10] ^= 1;
    const error = await rejection(() => parseDatasetListing(tampered, hash));
    expect(error.code).toBe("bad-hash");
    expect(error.message).toBe(
      `dataset: the dataset listing's SHA-256 is ${await sha256Hex(tampered)}, not ${hash}`,
    );
  });

  it("say where a listing stored under its own hash is malformed", async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ format: "revq.dataset/v0", images: entries(1) }, "bad-listing", /at format/],
      [{ format: DATASET_LISTING_FORMAT, images: [] }, "bad-listing", /at images:/],
      [
        { format: DATASET_LISTING_FORMAT, images: [{ key: "k", etag: "e", size: 1 }] },
        "bad-listing",
        /at images\.0/,
      ],
      [
        { format: DATASET_LISTING_FORMAT, images: entries(MAX_DATASET_IMAGES + 1) },
        "bad-listing",
        /at images:/,
      ],
      [[], "bad-listing", /at its root/],
    ];
    for (const [json, code, message] of cases) {
      const bytes = new TextEncoder().encode(JSON.stringify(json));
      const error = await rejection(async () => parseDatasetListing(bytes, await sha256Hex(bytes)));
      expect([error.code, error.message]).toEqual([code, expect.stringMatching(message)]);
    }
    const notJson = new TextEncoder().encode("{images:");
    const error = await rejection(async () =>
      parseDatasetListing(notJson, await sha256Hex(notJson)),
    );
    expect(error.code).toBe("bad-json");
  });
});

describe("latent shards", () => {
  it("cut a listing into ceil(count / shardSize) shards", () => {
    expect(LATENT_SHARD_SIZE).toBe(256);
    expect(latentShardCount(1)).toBe(1);
    expect(latentShardCount(256)).toBe(1);
    expect(latentShardCount(257)).toBe(2);
    expect(latentShardCount(10, 3)).toBe(4);
  });

  it("are keyed by a VAE hash that follows its manifest entry, weights included", async () => {
    const vae: TokenizerManifest["vae"] = {
      name: "tiny",
      kind: "dcae",
      inputResolution: { height: 32, width: 32 },
      latentShape: { channels: 8, height: 8, width: 8 },
      config: { latent_channels: 8 },
      weights: { path: "vae.safetensors", bytes: 10, sha256: "a".repeat(64) },
    };
    const hash = await vaeHash(vae);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    // Key order does not matter (canonical JSON), the weights do.
    const { name, ...rest } = vae;
    expect(await vaeHash({ ...rest, name })).toBe(hash);
    expect(
      await vaeHash({
        ...vae,
        weights: { path: "vae.safetensors", bytes: 10, sha256: "b".repeat(64) },
      }),
    ).not.toBe(hash);
  });
});
