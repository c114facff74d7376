/**
 * A tokenizer ready to run: manifest, statistics, codebook with its nearest-code index, VAE and
 * rectifier on the device. Loading one takes seconds (weights to the device, the index over a
 * large codebook), so loaded tokenizers are kept in memory by manifest hash and shared by every
 * task that uses them; the least recently used one that no task holds is freed when more than
 * `keep` are loaded.
 */
import {
  type Codebook,
  createCodebook,
  type FileRef,
  NearestCodeIndex,
  parseSafetensors,
  type QuantLayout,
  quantLayout,
  readTensor,
  type SafetensorsFile,
  type TokenizerManifest,
  type TokenizerRef,
} from "@revq/shared";
import type { TokenizerCache } from "../cache.ts";
import type { Logger } from "../log.ts";
import { loadVae } from "../models/load-vae.ts";
import { disposeRectifier, loadRectifier, type Rectifier } from "../models/rectifier.ts";
import { safetensorsSource } from "../models/sources.ts";
import type { Vae } from "../models/vae.ts";
import type { BucketAccess } from "../storage.ts";
import { TaskError } from "../task-error.ts";
import { loadLocalVae } from "./local-vae.ts";

export type Tokenizer = {
  ref: TokenizerRef;
  manifest: TokenizerManifest;
  layout: QuantLayout;
  /** Per latent dimension (C·H·W, in token order). */
  mean: Float32Array;
  std: Float32Array;
  codebook: Codebook;
  index: NearestCodeIndex;
  vae: Vae;
  /** null for the identity rectifier. */
  rectifier: Rectifier | null;
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
    const { quantizer, vae: vaeSpec } = manifest;
    const layout = quantLayout(vaeSpec.latentShape, quantizer.tokens, quantizer.groups);
    const dims = layout.tokens * layout.codeDim;
    const stats = safetensors(await file(manifest.files.stats), manifest.files.stats.path);
    const mean = floats(stats, "mean", dims, manifest.files.stats.path);
    const std = floats(stats, "std", dims, manifest.files.stats.path);
    const { groups, codesPerGroup: k, codeDim } = quantizer;
    const codebookFile = safetensors(
      await file(manifest.files.codebook),
      manifest.files.codebook.path,
    );
    const codebook = createCodebook(
      groups,
      k,
      codeDim,
      floats(codebookFile, "codebook", groups * k * codeDim, manifest.files.codebook.path),
    );
    const index = new NearestCodeIndex(codebook);

    const vae = vaeSpec.weights
      ? await loadVae(vaeSpec, safetensorsSource(await file(vaeSpec.weights))).catch(
          (error: Error) => {
            throw invalid(`its VAE does not load: ${error.message}`);
          },
        )
      : await loadLocalVae(vaeSpec, this.modelsDir);
    let rectifier: Rectifier | null = null;
    try {
      rectifier = await this.loadRectifier(manifest, file);
    } catch (error) {
      vae.dispose();
      throw error;
    }
    this.log.info("tokenizer loaded", {
      manifestHash: ref.manifestHash,
      name: manifest.name,
      seconds: (Date.now() - started) / 1000,
    });
    return { ref, manifest, layout, mean, std, codebook, index, vae, rectifier };
  }

  private async loadRectifier(
    manifest: TokenizerManifest,
    file: (f: FileRef) => Promise<Uint8Array>,
  ): Promise<Rectifier | null> {
    const spec = manifest.rectifier;
    if (spec.architecture === "identity") return null;
    const ref = manifest.files.rectifier as FileRef; // required by the schema for this architecture
    const config = {
      latentChannels: manifest.vae.latentShape.channels,
      channels: spec.channels,
      blocks: spec.blocks,
      headDim: spec.attentionHeadDim,
      multiscales: spec.qkvMultiscales,
    };
    return loadRectifier(config, safetensorsSource(await file(ref))).catch((error: Error) => {
      throw invalid(`its rectifier does not load: ${error.message}`);
    });
  }
}

function dispose(tokenizer: Tokenizer): void {
  tokenizer.vae.dispose();
  if (tokenizer.rectifier) disposeRectifier(tokenizer.rectifier);
}

function invalid(detail: string): TaskError {
  return new TaskError("tokenizer-invalid", `The tokenizer is unusable: ${detail}.`, false);
}

function safetensors(bytes: Uint8Array, path: string): SafetensorsFile {
  try {
    return parseSafetensors(bytes);
  } catch (error) {
    throw invalid(`${path} is not a safetensors file (${(error as Error).message})`);
  }
}

/** Tensor `name` of the file as float32, which must hold exactly `count` values. */
function floats(file: SafetensorsFile, name: string, count: number, path: string): Float32Array {
  if (!file.tensors.has(name)) throw invalid(`${path} has no tensor "${name}"`);
  const { data, dtype } = readTensor(file, name);
  if (dtype !== "F32") throw invalid(`${path}: tensor "${name}" is ${dtype}, not F32`);
  if (data.length !== count) {
    throw invalid(`${path}: tensor "${name}" has ${data.length} values, expected ${count}`);
  }
  return data as Float32Array;
}
