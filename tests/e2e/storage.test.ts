import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../gpu-worker/src/log.ts";
import { s3Bucket } from "../../gpu-worker/src/storage.ts";
import { LocalEdge } from "./support/edge.ts";

const log = createLogger({ format: "json", write: () => undefined });
const edge = new LocalEdge();
const backoff = { initialMs: 50, maxMs: 400 };

beforeAll(() => edge.start());
afterAll(() => edge.dispose());

describe("the bucket through wrangler dev's S3 door", () => {
  it("puts and gets whole objects", async () => {
    const bucket = s3Bucket(edge.s3, { log, backoff });
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
    await bucket.put("e2e/storage/blob.bin", bytes, "application/octet-stream");
    expect(await bucket.get("e2e/storage/blob.bin")).toEqual(bytes);
  });

  it("says not-found for a missing object, without retrying", async () => {
    const bucket = s3Bucket(edge.s3, { log, backoff });
    const started = Date.now();
    await expect(bucket.get("e2e/storage/none")).rejects.toMatchObject({
      name: "BucketError",
      code: "not-found",
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("says denied for a wrong secret", async () => {
    const bucket = s3Bucket({ ...edge.s3, secretAccessKey: "wrong" }, { log, backoff });
    await expect(bucket.get("e2e/storage/blob.bin")).rejects.toMatchObject({ code: "denied" });
  });

  it("waits for a bucket that went away and reads once it is back", async () => {
    const bucket = s3Bucket(edge.s3, { log, backoff });
    await bucket.put("e2e/storage/later", new Uint8Array([1, 2, 3]), "application/octet-stream");
    await edge.stop();
    await expect(
      bucket.get("e2e/storage/later", { deadline: Date.now() + 300 }),
    ).rejects.toMatchObject({ code: "unreachable" });
    const reading = bucket.get("e2e/storage/later", { deadline: Date.now() + 60_000 });
    await edge.start();
    expect(await reading).toEqual(new Uint8Array([1, 2, 3]));
  });
});
