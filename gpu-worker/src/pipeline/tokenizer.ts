/**
 * A tokenizer ready to run: manifest, statistics, codebook with its nearest-code index, VAE and
 * rectifier on the device. Loading one takes seconds (weights to the device, the index over a
 * large codebook), so loaded tokenizers are kept in memory by manifest hash and shared by every
 * task that uses them; the least recently used one that no task holds is freed when more than
 * `keep` are loaded.
 */
import { type FileRef, NearestCodeIndex, type TokenizerRef } from "@revq/shared";
import type { TokenizerCache } from "../cache.ts";
import type { Logger } from "../log.ts";
import { disposeRectifier, type Rectifier } from "../models/rectifier.ts";
import type { BucketAccess } from "../storage.ts";
import { loadLocalVae } from "./local-vae.ts";
import {
  type DecodingModels,
  loadManifestRectifier,
  loadShippedVae,
  loadTables,
  type TokenizerTables,
} from "./tokenizer-models.ts";

export type Tokenizer = DecodingModels &
  TokenizerTables & {
    ref: TokenizerRef;
    index: NearestCodeIndex;
  };

type Entry = { loading: Promise<Tokenizer>; users: number; lastUsed: number };

export class TokenizerStore {
  private readonly cache: TokenizerCache;
  private readonly log: Logger;
  private readonly keep: number;
  /** Where VAEs that a manifest names without weights are found (local-vae.ts). */
  private readonly modelsDir: string;
  private readonly entries = new Map<string, Entry>();

  constructor(cache: TokenizerCache, log: Logger, options: { modelsDir: string; keep?: number }) {
    this.cache = cache;
    this.log = log;
    this.modelsDir = options.modelsDir;
    this.keep = options.keep ?? 2;
  }

  /** Runs `use` with the tokenizer loaded; it stays loaded at least until `use` settles. */
  async with<T>(
    ref: TokenizerRef,
    options: BucketAccess,
    use: (tokenizer: Tokenizer) => Promise<T>,
  ): Promise<T> {
    let entry = this.entries.get(ref.manifestHash);
    if (!entry) {
      const loading = this.load(ref, options);
      entry = { loading, users: 0, lastUsed: Date.now() };
      this.entries.set(ref.manifestHash, entry);
      // A failed load is not kept: the next task tries again (the bucket may be back).
      loading.catch(() => this.entries.delete(ref.manifestHash));
    }
    entry.users++;
    try {
      return await use(await entry.loading);
    } finally {
      entry.users--;
      entry.lastUsed = Date.now();
      this.evict();
    }
  }

  private evict(): void {
    while (this.entries.size > this.keep) {
      const idle = [...this.entries].filter(([, e]) => e.users === 0);
      if (idle.length === 0) return;
      const [hash, oldest] = idle.reduce((a, b) => (b[1].lastUsed < a[1].lastUsed ? b : a));
      this.entries.delete(hash);
      void oldest.loading.then(dispose, () => undefined);
      this.log.info("tokenizer unloaded", { manifestHash: hash });
    }
  }

  private async load(ref: TokenizerRef, options: BucketAccess): Promise<Tokenizer> {
    const started = Date.now();
    const manifest = await this.cache.manifest(ref, options);
    const file = (f: FileRef) => this.cache.file(ref, f, options);
    const tables = await loadTables(manifest, file);
    const index = new NearestCodeIndex(tables.codebook);
    const vae = manifest.vae.weights
      ? await loadShippedVae(manifest, file)
      : await loadLocalVae(manifest.vae, this.modelsDir);
    let rectifier: Rectifier | null = null;
    try {
      rectifier = await loadManifestRectifier(manifest, file);
    } catch (error) {
      vae.dispose();
      throw error;
    }
    this.log.info("tokenizer loaded", {
      manifestHash: ref.manifestHash,
      name: manifest.name,
      seconds: (Date.now() - started) / 1000,
    });
    return { ref, manifest, ...tables, index, vae, rectifier };
  }
}

function dispose(tokenizer: Tokenizer): void {
  tokenizer.vae.dispose();
  if (tokenizer.rectifier) disposeRectifier(tokenizer.rectifier);
}
