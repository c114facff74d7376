import { type Bucket, BucketError } from "../../../gpu-worker/src/storage.ts";

/**
 * A bucket in memory that counts its reads, for tests of what sits on top of the Bucket
 * interface; the presigned-URL bucket itself is tested against wrangler dev (tests/e2e/storage.test.ts).
 */
export class MemoryBucket implements Bucket {
  readonly objects = new Map<string, Uint8Array>();
  readonly types = new Map<string, string>();
  gets = 0;

  async get(key: string): Promise<Uint8Array> {
    this.gets++;
    const bytes = this.objects.get(key);
    if (!bytes) throw new BucketError("not-found", key, `get ${key}: no such object`);
    await new Promise((resolve) => setTimeout(resolve, 2));
    return bytes.slice();
  }

  async put(key: string, bytes: Uint8Array, contentType: string): Promise<void> {
    this.objects.set(key, bytes.slice());
    this.types.set(key, contentType);
  }
}
