import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bucketKeys,
  canonicalJson,
  type FileRef,
  manifestHash,
  parseManifest,
  sha256Hex,
  type TokenizerRef,
} from "@revq/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TokenizerCache } from "../../gpu-worker/src/cache.ts";
import { createLogger } from "../../gpu-worker/src/log.ts";
import { MemoryBucket } from "./worker-helpers/memory-bucket.ts";

const log = createLogger({ format: "json", write: () => undefined });
let dir: string;
let bucket: MemoryBucket;
let ref: TokenizerRef;
let codebook: FileRef;
const codebookBytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

async function fileRef(path: string, bytes: Uint8Array): Promise<FileRef> {
  return { path, bytes: bytes.length, sha256: await sha256Hex(bytes) };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "revq-cache-"));
  bucket = new MemoryBucket();
  const stats = new Uint8Array([9, 9, 9]);
  codebook = await fileRef("codebook.safetensors", codebookBytes);
  const manifest = parseManifest({
    schema: "revq.tokenizer/v1",
    name: "cache-test",
    vae: {
      name: "v",
      kind: "dcae",
      inputResolution: { height: 32, width: 32 },
      latentShape: { channels: 8, height: 8, width: 8 },
    },
    quantizer: { tokens: 128, groups: 128, codeDim: 4, codesPerGroup: 16 },
    rectifier: { architecture: "identity" },
    files: { stats: await fileRef("stats.safetensors", stats), codebook },
  });
  const hash = await manifestHash(manifest);
  ref = {
    id: "tok_test",
    manifestHash: hash,
    manifestKey: bucketKeys.tokenizerManifest(hash),
    filesPrefix: bucketKeys.tokenizerFile(hash, ""),
  };
  bucket.objects.set(ref.manifestKey, new TextEncoder().encode(canonicalJson(manifest)));
  bucket.objects.set(`${ref.filesPrefix}codebook.safetensors`, codebookBytes);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("TokenizerCache", () => {
  it("fetches once, keeps manifest and files on disk by hash, and reads them back", async () => {
    const first = new TokenizerCache(dir, log);
    const manifest = await first.manifest(ref, { bucket });
    expect(manifest.name).toBe("cache-test");
    expect(await first.file(ref, codebook, { bucket })).toEqual(codebookBytes);
    expect(bucket.gets).toBe(2);
    expect(readFileSync(join(dir, "files", codebook.sha256))).toEqual(Buffer.from(codebookBytes));
    const second = new TokenizerCache(dir, log);
    expect((await second.manifest(ref, { bucket })).name).toBe("cache-test");
    expect(await second.file(ref, codebook, { bucket })).toEqual(codebookBytes);
    expect(bucket.gets).toBe(2);
    expect(await second.list()).toEqual([{ manifestHash: ref.manifestHash, name: "cache-test" }]);
  });

  it("fetches a corrupt cache entry again and repairs it", async () => {
    const cache = new TokenizerCache(dir, log);
    await cache.file(ref, codebook, { bucket });
    writeFileSync(join(dir, "files", codebook.sha256), "garbage!");
    expect(await new TokenizerCache(dir, log).file(ref, codebook, { bucket })).toEqual(
      codebookBytes,
    );
    expect(bucket.gets).toBe(2);
    expect(readFileSync(join(dir, "files", codebook.sha256))).toEqual(Buffer.from(codebookBytes));
  });

  it("downloads an object wanted by several tasks at once only once", async () => {
    const cache = new TokenizerCache(dir, log);
    await Promise.all([
      cache.file(ref, codebook, { bucket }),
      cache.file(ref, codebook, { bucket }),
    ]);
    expect(bucket.gets).toBe(1);
  });

  it("refuses a file whose size or hash differs from the manifest, caching nothing", async () => {
    const cache = new TokenizerCache(dir, log);
    bucket.objects.set(`${ref.filesPrefix}codebook.safetensors`, new Uint8Array(8));
    await expect(cache.file(ref, codebook, { bucket })).rejects.toMatchObject({
      name: "TaskError",
      code: "tokenizer-invalid",
      retryable: false,
      message: expect.stringMatching(/has SHA-256 [0-9a-f]{64}; expected/),
    });
    bucket.objects.set(`${ref.filesPrefix}codebook.safetensors`, new Uint8Array(3));
    await expect(cache.file(ref, codebook, { bucket })).rejects.toThrow(
      /has 3 bytes; the manifest says 8/,
    );
    expect(() => readFileSync(join(dir, "files", codebook.sha256))).toThrow();
  });

  it("refuses a manifest whose bytes do not hash to the tokenizer's identity", async () => {
    const cache = new TokenizerCache(dir, log);
    const text = new TextDecoder().decode(bucket.objects.get(ref.manifestKey));
    bucket.objects.set(
      ref.manifestKey,
      new TextEncoder().encode(text.replace("cache-test", "other")),
    );
    await expect(cache.manifest(ref, { bucket })).rejects.toMatchObject({
      code: "tokenizer-invalid",
    });
    expect(await cache.list()).toEqual([]);
  });

  it("passes a missing object on as the bucket's error", async () => {
    const cache = new TokenizerCache(dir, log);
    bucket.objects.delete(`${ref.filesPrefix}codebook.safetensors`);
    await expect(cache.file(ref, codebook, { bucket })).rejects.toMatchObject({
      code: "not-found",
    });
  });
});
