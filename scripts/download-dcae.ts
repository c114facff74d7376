/**
 * Downloads a published DC-AE checkpoint (diffusers layout: config.json and
 * diffusion_pytorch_model.safetensors) on a machine with internet access, then checks it: the
 * config parses, the weights load strictly into the tfjs model (one tensor at a time), and a
 * 256×256 image encodes to the expected latent shape. Not run by tests: nothing downloads there.
 *
 *   node scripts/download-dcae.ts [preset] [target directory]
 *   default: dc-ae-f32c32-sana-1.1 into .revq/models/<preset>/  (about 1.25 GB)
 */

import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../gpu-worker/src/backend.ts";
import { openSafetensorsFile } from "../gpu-worker/src/io/safetensors-file.ts";
import { parseDcaeConfig } from "../gpu-worker/src/models/dcae/config.ts";
import { disposeDcae, encode, loadDcae } from "../gpu-worker/src/models/dcae/model.ts";
import { DCAE_PRESETS, type DcaePresetName } from "../gpu-worker/src/models/dcae/presets.ts";

const FILES = ["config.json", "diffusion_pytorch_model.safetensors"];

async function download(url: string, path: string): Promise<void> {
  if (existsSync(path)) return;
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`${url}: HTTP ${response.status}`);
  const partial = `${path}.partial`;
  await pipeline(Readable.fromWeb(response.body), createWriteStream(partial));
  renameSync(partial, path); // only a complete file gets the real name
}

async function main(): Promise<void> {
  const preset = (process.argv[2] ?? "dc-ae-f32c32-sana-1.1") as DcaePresetName;
  const entry = DCAE_PRESETS[preset];
  if (!entry)
    throw new Error(`unknown preset ${preset}; known: ${Object.keys(DCAE_PRESETS).join(", ")}`);
  const dir = process.argv[3] ?? join(".revq", "models", preset);
  mkdirSync(dir, { recursive: true });
  for (const file of FILES) {
    console.log(`downloading ${file} ...`);
    await download(
      `https://huggingface.co/${entry.repository}/resolve/main/${file}`,
      join(dir, file),
    );
  }
  const config = parseDcaeConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
  const selection = await selectBackend("auto");
  console.log(`backend: ${selection.reason}`);
  const source = await openSafetensorsFile(join(dir, "diffusion_pytorch_model.safetensors"));
  const model = await loadDcae(config, source);
  await source.close();
  const side = 8 * config.spatialCompression;
  const latent = tf.tidy(() => encode(model.encoder, tf.zeros([1, side, side, 3])));
  console.log(`loaded; a ${side}×${side} image encodes to [${latent.shape}] (NHWC)`);
  latent.dispose();
  disposeDcae(model);
}

await main();
