/**
 * The VAE the offline trainer encodes with, from a folder:
 *
 * - a tokenizer folder (manifest.json beside its files): its VAE, whose weights file (when the
 *   manifest ships one) travels on into the new tokenizer;
 * - a VAE folder whose manifest.json holds the `vae` entry a tokenizer manifest takes, weights
 *   beside it (models/default-vae): the same, weights travelling on;
 * - a diffusers DC-AE folder (config.json, diffusion_pytorch_model.safetensors, as
 *   scripts/download-dcae.ts leaves it) at a given resolution: referenced by name, not copied
 *   (workers find it in their models directory).
 *
 * `identity` names the VAE for the latent cache: the same images through another VAE (or the
 * same VAE at another resolution) are another dataset.
 */

import { readFile, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { canonicalJson, parseManifest, sha256Hex, TokenizerManifest } from "@revq/shared";
import { openSafetensorsFile } from "../io/safetensors-file.ts";
import { parseDcaeConfig } from "../models/dcae/config.ts";
import { loadVae } from "../models/load-vae.ts";
import { safetensorsSource } from "../models/sources.ts";
import type { ImageSize, Vae, VaeSpec } from "../models/vae.ts";

export type FolderVae = {
  vae: Vae;
  spec: Omit<VaeSpec, "weights">;
  /** Bytes of the weights file to ship with the tokenizer, when the source shipped one. */
  weights?: Uint8Array;
  identity: string;
};

export async function loadVaeFolder(dir: string, resolution?: ImageSize): Promise<FolderVae> {
  const manifestText = await readFile(join(dir, "manifest.json"), "utf8").catch(() => null);
  if (manifestText !== null) return fromManifest(dir, manifestText);
  const configText = await readFile(join(dir, "config.json"), "utf8").catch(() => null);
  if (configText !== null) return fromDiffusers(dir, configText, resolution);
  throw new Error(
    `${dir} holds neither a tokenizer (manifest.json) nor a diffusers VAE (config.json)`,
  );
}

async function fromManifest(dir: string, text: string): Promise<FolderVae> {
  const json = JSON.parse(text) as Record<string, unknown>;
  const entry =
    json.schema === undefined && json.vae ? parseVaeEntry(json.vae, dir) : parseManifest(json).vae;
  const { weights: ref, ...spec } = entry;
  if (!ref) throw new Error(`the manifest in ${dir} does not ship its VAE's weights`);
  const weights = new Uint8Array(await readFile(join(dir, ref.path)));
  if (weights.length !== ref.bytes || (await sha256Hex(weights)) !== ref.sha256) {
    throw new Error(`${join(dir, ref.path)} does not match its manifest (size or SHA-256)`);
  }
  const vae = await loadVae(entry, safetensorsSource(weights));
  return { vae, spec, weights, identity: await sha256Hex(canonicalJson(entry)) };
}

/** A bare `vae` entry, checked by the tokenizer manifest's own schema for it. */
function parseVaeEntry(entry: unknown, dir: string): VaeSpec {
  const parsed = TokenizerManifest.shape.vae.safeParse(entry);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `vae.${i.path.join(".")}: ${i.message}`);
    throw new Error(`${join(dir, "manifest.json")}: ${problems.join("; ")}`);
  }
  return parsed.data;
}

async function fromDiffusers(
  dir: string,
  text: string,
  resolution?: ImageSize,
): Promise<FolderVae> {
  if (!resolution)
    throw new Error(`${dir} is a diffusers VAE: give the image resolution (--resolution)`);
  const config = JSON.parse(text) as Record<string, unknown>;
  const parsed = parseDcaeConfig(config);
  const f = parsed.spatialCompression;
  if (resolution.height % f !== 0 || resolution.width % f !== 0) {
    throw new Error(`the resolution must be a multiple of the VAE's compression ${f}`);
  }
  const spec: Omit<VaeSpec, "weights"> = {
    name: basename(resolve(dir)),
    kind: "dcae",
    inputResolution: resolution,
    latentShape: {
      channels: parsed.encoder.latentChannels,
      height: resolution.height / f,
      width: resolution.width / f,
    },
    config: config as VaeSpec["config"],
  };
  const weightsPath = join(dir, "diffusion_pytorch_model.safetensors");
  const source = await openSafetensorsFile(weightsPath);
  try {
    const vae = await loadVae(spec, source);
    const { size, mtimeMs } = await stat(weightsPath);
    const identity = await sha256Hex(canonicalJson({ spec, weights: { size, mtimeMs } }));
    return { vae, spec, identity };
  } finally {
    await source.close();
  }
}
