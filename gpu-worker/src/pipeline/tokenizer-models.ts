/**
 * A tokenizer's tables and models from the bytes of its files: statistics, codebook, VAE and
 * rectifier. No Node APIs, so that the same loading runs in the worker (TokenizerStore, which
 * fetches and checks the files) and in a browser (the console decodes tokens on the user's
 * machine through the package export `@revq/gpu-worker/tokenizer-models`).
 */
import {
  type Codebook,
  createCodebook,
  type FileRef,
  parseSafetensors,
  type QuantLayout,
  quantLayout,
  readTensor,
  type SafetensorsFile,
  type TokenizerManifest,
} from "@revq/shared";
import { loadVae } from "../models/load-vae.ts";
import { loadRectifier, type Rectifier } from "../models/rectifier.ts";
import { safetensorsSource } from "../models/sources.ts";
import type { Vae } from "../models/vae.ts";
import { TaskError } from "../task-error.ts";

/** A file of the tokenizer's manifest, as bytes already checked against its SHA-256. */
export type TokenizerFiles = (file: FileRef) => Promise<Uint8Array>;

export type TokenizerTables = {
  layout: QuantLayout;
  /** Per latent dimension (C·H·W, in token order). */
  mean: Float32Array;
  std: Float32Array;
  codebook: Codebook;
};

/** What turns quantized latents into images: the device half of decoding (device-ops.ts). */
export type DecodingModels = {
  manifest: TokenizerManifest;
  mean: Float32Array;
  std: Float32Array;
  vae: Vae;
  /** null for the identity rectifier. */
  rectifier: Rectifier | null;
};

/** The statistics and the codebook, each checked for its dtype and size. */
export async function loadTables(
  manifest: TokenizerManifest,
  file: TokenizerFiles,
): Promise<TokenizerTables> {
  const { quantizer, vae } = manifest;
  const { stats, codebook } = manifest.files;
  const layout = quantLayout(vae.latentShape, quantizer.tokens, quantizer.groups);
  const dims = layout.tokens * layout.codeDim;
  const statsFile = safetensors(await file(stats), stats.path);
  const codebookFile = safetensors(await file(codebook), codebook.path);
  const { groups, codesPerGroup, codeDim } = quantizer;
  return {
    layout,
    mean: floats(statsFile, "mean", dims, stats.path),
    std: floats(statsFile, "std", dims, stats.path),
    codebook: createCodebook(
      groups,
      codesPerGroup,
      codeDim,
      floats(codebookFile, "codebook", groups * codesPerGroup * codeDim, codebook.path),
    ),
  };
}

/** The VAE from the weights file the manifest ships (`vae.weights`, which must be there). */
export async function loadShippedVae(
  manifest: TokenizerManifest,
  file: TokenizerFiles,
): Promise<Vae> {
  const { weights } = manifest.vae;
  if (!weights) throw invalid(`its VAE "${manifest.vae.name}" ships no weights file`);
  return loadVae(manifest.vae, safetensorsSource(await file(weights))).catch((error: Error) => {
    throw invalid(`its VAE does not load: ${error.message}`);
  });
}

/** The rectifier the manifest describes; null for the identity. */
export async function loadManifestRectifier(
  manifest: TokenizerManifest,
  file: TokenizerFiles,
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
    ...(spec.residual ? { residual: true as const } : {}),
  };
  return loadRectifier(config, safetensorsSource(await file(ref))).catch((error: Error) => {
    throw invalid(`its rectifier does not load: ${error.message}`);
  });
}

export function invalid(detail: string): TaskError {
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
