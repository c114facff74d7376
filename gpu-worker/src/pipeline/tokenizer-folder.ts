/**
 * A tokenizer folder (manifest.json beside the files it names, as the trainer writes it) loaded
 * by the worker's own TokenizerStore, through a read-only bucket that holds it where the edge
 * keeps a registered tokenizer. So a tokenizer is evaluated before it is registered with every
 * check a worker makes of a downloaded one: manifest hash, canonical form, each file's size and
 * SHA-256, and the same loading code.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bucketKeys, sha256Hex, type TokenizerRef } from "@revq/shared";
import { TokenizerCache } from "../cache.ts";
import { createLogger } from "../log.ts";
import { type Bucket, BucketError } from "../storage.ts";
import { type Tokenizer, TokenizerStore } from "./tokenizer.ts";

/** Runs `use` with the tokenizer in `dir` loaded; its cache is a temporary folder, removed after. */
export async function withTokenizerFolder<T>(
  dir: string,
  use: (tokenizer: Tokenizer) => Promise<T>,
): Promise<T> {
  const { ref, bucket } = await folderBucket(dir);
  const log = createLogger({ format: "json", write: () => undefined });
  const cacheDir = await mkdtemp(join(tmpdir(), "revq-tokenizer-folder-"));
  try {
    // VAEs named without weights are looked for in an empty folder: a folder must ship its VAE.
    // keep: 0 frees the tokenizer on the device as soon as `use` settles.
    const store = new TokenizerStore(new TokenizerCache(cacheDir, log), log, {
      modelsDir: join(cacheDir, "models"),
      keep: 0,
    });
    return await store.with(ref, { bucket }, use);
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

async function folderBucket(dir: string): Promise<{ ref: TokenizerRef; bucket: Bucket }> {
  const manifest = new Uint8Array(await readFile(join(dir, "manifest.json")));
  const hash = await sha256Hex(manifest);
  const manifestKey = bucketKeys.tokenizerManifest(hash);
  const filesPrefix = bucketKeys.tokenizerFile(hash, "");
  const bucket: Bucket = {
    async get(key) {
      if (key === manifestKey) return manifest;
      // The store asks only for the manifest's file paths, which its schema checks are plain.
      if (key.startsWith(filesPrefix)) {
        const path = join(dir, key.slice(filesPrefix.length));
        try {
          return new Uint8Array(await readFile(path));
        } catch (error) {
          throw new BucketError("not-found", key, `${path}: ${(error as Error).message}`);
        }
      }
      throw new BucketError("not-found", key, `get ${key}: not a file of the tokenizer in ${dir}`);
    },
    async put(key) {
      throw new BucketError("denied", key, `put ${key}: the tokenizer folder ${dir} is read-only`);
    },
  };
  const ref = { id: `tok_${hash.slice(0, 26)}`, manifestHash: hash, manifestKey, filesPrefix };
  return { ref, bucket };
}
