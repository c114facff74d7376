/**
 * A tokenizer loaded in the browser from the edge's tokenizer downloads: the canonical manifest
 * (its SHA-256 must be the manifest hash), then each file, checked against the size and SHA-256
 * the manifest pins, and turned into tables and models by the worker's own loader
 * (@revq/gpu-worker/tokenizer-models). Loaded once per page and manifest hash.
 */

import {
  type DecodingModels,
  loadManifestRectifier,
  loadShippedVae,
  loadTables,
  type TokenizerTables,
} from "@revq/gpu-worker/tokenizer-models";
import { type FileRef, parseManifest, sha256Hex, type TokenizerManifest } from "@revq/shared";
import { type Api, tokenizerFilePath } from "./api.ts";
import { startBackend } from "./decoder-backend.ts";

export type BrowserTokenizer = DecodingModels & TokenizerTables & { manifestHash: string };

const loaded = new Map<string, Promise<BrowserTokenizer>>();

export function loadTokenizer(api: Api, manifestHash: string): Promise<BrowserTokenizer> {
  let loading = loaded.get(manifestHash);
  if (!loading) {
    loading = load(api, manifestHash);
    loaded.set(manifestHash, loading);
    // A failed load is not kept: the next try may find the edge back.
    loading.catch(() => loaded.delete(manifestHash));
  }
  return loading;
}

async function load(api: Api, manifestHash: string): Promise<BrowserTokenizer> {
  const base = `/v1/tokenizers/${encodeURIComponent(manifestHash)}`;
  const manifestBytes = await api.bytes(`${base}/manifest.json`);
  if ((await sha256Hex(manifestBytes)) !== manifestHash) {
    throw new Error(`The edge's manifest of tokenizer ${manifestHash} does not hash to it.`);
  }
  const manifest: TokenizerManifest = parseManifest(
    JSON.parse(new TextDecoder().decode(manifestBytes)),
  );
  const file = async (ref: FileRef) => {
    const bytes = await api.bytes(tokenizerFilePath(manifestHash, ref.path));
    if (bytes.length !== ref.bytes || (await sha256Hex(bytes)) !== ref.sha256) {
      throw new Error(`The tokenizer's ${ref.path} is not the file its manifest pins.`);
    }
    return bytes;
  };
  await startBackend();
  const tables = await loadTables(manifest, file);
  const vae = await loadShippedVae(manifest, file);
  try {
    const rectifier = await loadManifestRectifier(manifest, file);
    return { manifest, manifestHash, ...tables, vae, rectifier };
  } catch (error) {
    vae.dispose();
    throw error;
  }
}
