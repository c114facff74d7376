/**
 * Tokenizer manifests and files on local disk, by content hash, so that a worker downloads a
 * tokenizer once and a restart loads it from disk:
 *
 *   <dir>/manifests/<manifestHash>.json   the canonical manifest (its SHA-256 is the hash)
 *   <dir>/files/<sha256>                  a file of some manifest, by its own SHA-256
 *
 * Everything is checked against its hash when read from the bucket and again when read from
 * disk; a cache entry that does not match (a disk error, a crash in an old version) is deleted
 * and fetched again. Entries are written to a temporary name and renamed, so a crash leaves
 * nothing a later read would trust.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type FileRef,
  manifestHash,
  parseManifest,
  sha256Hex,
  type TokenizerManifest,
  type TokenizerRef,
} from "@revq/shared";
import type { Logger } from "./log.ts";
import type { BucketAccess } from "./storage.ts";
import { TaskError } from "./task-error.ts";

export type CachedTokenizer = { manifestHash: string; name: string };

export class TokenizerCache {
  private readonly dir: string;
  private readonly log: Logger;
  /** One download per object at a time, however many tasks want it. */
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();

  constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.log = log;
  }

  /** The tokenizer's manifest, checked: its bytes hash to ref.manifestHash and it parses. */
  async manifest(ref: TokenizerRef, options: BucketAccess): Promise<TokenizerManifest> {
    const bytes = await this.object(
      join("manifests", `${ref.manifestHash}.json`),
      ref.manifestKey,
      { sha256: ref.manifestHash },
      options,
    );
    let manifest: TokenizerManifest;
    try {
      manifest = parseManifest(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)));
    } catch (error) {
      throw new TaskError(
        "tokenizer-invalid",
        `The manifest of tokenizer ${ref.id} does not parse: ${(error as Error).message}`,
        false,
      );
    }
    // The stored bytes hash right; so must the manifest they mean (canonical JSON is unique).
    if ((await manifestHash(manifest)) !== ref.manifestHash) {
      throw new TaskError(
        "tokenizer-invalid",
        `The manifest of tokenizer ${ref.id} is not in canonical form.`,
        false,
      );
    }
    return manifest;
  }

  /** One file of the tokenizer, checked against the manifest's size and SHA-256. */
  file(ref: TokenizerRef, file: FileRef, options: BucketAccess): Promise<Uint8Array> {
    return this.object(
      join("files", file.sha256),
      `${ref.filesPrefix}${file.path}`,
      { sha256: file.sha256, bytes: file.bytes },
      options,
    );
  }

  /** The tokenizers whose manifests are on disk (for the startup report). */
  async list(): Promise<CachedTokenizer[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, "manifests"));
    } catch {
      return [];
    }
    const found: CachedTokenizer[] = [];
    for (const name of names.filter((n) => /^[0-9a-f]{64}\.json$/.test(n))) {
      try {
        const manifest = parseManifest(
          JSON.parse(await readFile(join(this.dir, "manifests", name), "utf8")),
        );
        found.push({ manifestHash: name.slice(0, 64), name: manifest.name });
      } catch {
        // A damaged entry is replaced when a task needs it; it is no tokenizer to report.
      }
    }
    return found;
  }

  private object(
    path: string,
    key: string,
    expected: { sha256: string; bytes?: number },
    options: BucketAccess,
  ): Promise<Uint8Array> {
    const pending = this.inFlight.get(path);
    if (pending) return pending;
    const loading = this.load(path, key, expected, options).finally(() =>
      this.inFlight.delete(path),
    );
    this.inFlight.set(path, loading);
    return loading;
  }

  private async load(
    path: string,
    key: string,
    expected: { sha256: string; bytes?: number },
    options: BucketAccess,
  ): Promise<Uint8Array> {
    const full = join(this.dir, path);
    const cached = await readFile(full).then(
      (b) => new Uint8Array(b.buffer, b.byteOffset, b.length),
      () => undefined,
    );
    if (cached) {
      if ((await problem(cached, expected)) === undefined) return cached;
      this.log.warn("tokenizer cache entry is corrupt; fetching it again", { path: full });
      await rm(full, { force: true });
    }
    const fetched = await options.bucket.get(key, options);
    const wrong = await problem(fetched, expected);
    if (wrong) {
      throw new TaskError("tokenizer-invalid", `The bucket object ${key} ${wrong}.`, false);
    }
    await mkdir(join(full, ".."), { recursive: true });
    const temporary = `${full}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(temporary, fetched);
      await rename(temporary, full);
    } catch (error) {
      await rm(temporary, { force: true });
      // A full or read-only disk costs a download next time, not this task.
      this.log.warn("could not write the tokenizer cache", { path: full, error });
    }
    return fetched;
  }
}

async function problem(
  bytes: Uint8Array,
  expected: { sha256: string; bytes?: number },
): Promise<string | undefined> {
  if (expected.bytes !== undefined && bytes.length !== expected.bytes) {
    return `has ${bytes.length} bytes; the manifest says ${expected.bytes}`;
  }
  const actual = await sha256Hex(bytes);
  if (actual !== expected.sha256) return `has SHA-256 ${actual}; expected ${expected.sha256}`;
  return undefined;
}
