#!/usr/bin/env node
/**
 * revq-train: trains a ReVQ tokenizer on local files, with the same code the worker's train task
 * runs, and writes it as a tokenizer folder (manifest.json beside its files).
 *
 *   revq-train --images photos/ --vae models/some-tokenizer/ --out my-tokenizer/ --epochs 20
 *   revq-train ... --resume        continues from <work>/checkpoints after an interruption
 *
 * Latents are extracted once per (images, VAE) into <work>/latents/ in shards and reused by later
 * runs; a checkpoint is written to <work>/checkpoints/ after every epoch. A tokenizer that misses
 * the thresholds of --params' `require` is not written (exit 1). Exit codes: 0 done, 1 failed,
 * 2 bad usage, 130 interrupted (resume with --resume).
 */

import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  defaultHeldOut,
  type LatentShape,
  missedRequirements,
  parseSafetensors,
  rectifierWarning,
  sha256Hex,
  TrainParameters,
} from "@revq/shared";
import { type BackendChoice, isBackendChoice, selectBackend } from "../backend.ts";
import type { ImageSize } from "../models/vae.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { imageFolder } from "./cli-images.ts";
import { duration, epochRow, finalReport, progressLine, tableHeader } from "./cli-report.ts";
import { loadVaeFolder } from "./cli-vae.ts";
import { resolveTrainConfig, TrainConfigError } from "./config.ts";
import { type LatentSet, latentSet } from "./dataset.ts";
import { exportTokenizer } from "./export.ts";
import { extractLatents, readShard } from "./extract.ts";
import { folderStore } from "./folder-store.ts";
import { epochMetrics } from "./metrics.ts";
import { DEFAULT_PROBE_IMAGES, prepareTrainData } from "./prepare.ts";
import { disposeRun, startRun, train } from "./run.ts";

class UsageError extends Error {}

const OPTIONS = {
  images: { type: "string", help: "folder of PNG/JPEG/WebP training images" },
  latents: {
    type: "string",
    help: "folder of latent shards from an earlier extraction, instead of images",
  },
  vae: {
    type: "string",
    help: "a tokenizer folder whose VAE to use, a VAE folder (models/default-vae), or a diffusers DC-AE folder",
  },
  resolution: { type: "string", help: "image size HxW, for a diffusers VAE (e.g. 256x256)" },
  out: { type: "string", help: "where to write the tokenizer folder" },
  work: { type: "string", help: "latent cache and checkpoints (default: <out>.work)" },
  name: { type: "string", help: "the tokenizer's name (default: the out folder's name)" },
  params: { type: "string", help: "training parameters as JSON (as a train job takes them)" },
  preset: { type: "string", help: "512x16384, 256x65536, 256x262144 or small" },
  epochs: { type: "string", help: "epochs (paper: 100)" },
  "batch-size": { type: "string", help: "latents per step (paper: 256)" },
  tokens: { type: "string", help: "tokens per image" },
  groups: { type: "string", help: "codebook groups (default: one per token)" },
  codes: { type: "string", help: "codes per group" },
  seed: { type: "string", help: "random seed" },
  assignment: { type: "string", help: "exact (host k-d tree) or device (matrix form)" },
  "held-out": { type: "string", help: "latents held out for validation (default: a tenth, ≤ 256)" },
  probe: {
    type: "string",
    help: `held-out images decoded for PSNR/SSIM (default ${DEFAULT_PROBE_IMAGES})`,
  },
  "shard-size": { type: "string", help: "images per latent shard (default 1024)" },
  "vae-batch": { type: "string", help: "images per VAE call (default 16)" },
  backend: { type: "string", help: "tensorflow, webgpu, wasm, cpu or auto (default)" },
  resume: { type: "boolean", help: "continue the run checkpointed in <work>/checkpoints" },
  help: { type: "boolean", help: "show this help" },
} as const;

/** Flags that set training parameters: a resumed run takes them from its checkpoint instead. */
const TRAINING_FLAGS = [
  "params",
  "preset",
  "epochs",
  "batch-size",
  "tokens",
  "groups",
  "codes",
  "seed",
  "assignment",
] as const;

type Flags = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string;
};

function helpText(): string {
  const rows = Object.entries(OPTIONS).map(([flag, o]) => `  --${flag.padEnd(12)} ${o.help}`);
  return `usage: revq-train (--images DIR | --latents DIR) --vae DIR --out DIR [options]\n\n${rows.join("\n")}\n`;
}

function count(flags: Flags, key: keyof Flags, fallback: number): number {
  const text = flags[key];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`--${key} must be a whole number, got ${JSON.stringify(text)}`);
  return n;
}

function resolution(text: string | undefined): ImageSize | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--resolution must be HxW, got ${JSON.stringify(text)}`);
  return { height: Number(m[1]), width: Number(m[2]) };
}

/** Training parameters from --params and the single-parameter flags over it. */
function parameters(flags: Flags): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (flags.params) {
    try {
      params = JSON.parse(flags.params);
    } catch (error) {
      throw new UsageError(`--params is not JSON: ${(error as Error).message}`);
    }
  }
  const number = (key: keyof Flags) => (flags[key] === undefined ? undefined : Number(flags[key]));
  const given = {
    preset: flags.preset,
    epochs: number("epochs"),
    batchSize: number("batch-size"),
    tokens: number("tokens"),
    groups: number("groups"),
    codes: number("codes"),
    seed: number("seed"),
    assignment: flags.assignment,
  };
  for (const [key, value] of Object.entries(given)) if (value !== undefined) params[key] = value;
  return params;
}

/** Latent shards written by an earlier extraction (extract.ts), in name order. */
async function latentFolder(dir: string, dims: number, shape: LatentShape) {
  const names = (await readdir(dir)).filter((n) => /^shard-\d+\.safetensors$/.test(n)).sort();
  if (names.length === 0)
    throw new UsageError(`${dir} holds no latent shards (shard-*.safetensors)`);
  const shards: Float32Array[] = [];
  const hashes: string[] = [];
  let first = 0;
  for (const name of names) {
    const bytes = new Uint8Array(await readFile(join(dir, name)));
    const count = parseSafetensors(bytes).tensors.get("latents")?.shape[0] ?? 0;
    const latents = readShard(bytes, { first, count, shape });
    if (!latents) {
      throw new Error(
        `${join(dir, name)} is not a latent shard of this VAE's shape starting at image ${first} (a shard missing before it?)`,
      );
    }
    first += count;
    shards.push(latents);
    hashes.push(await sha256Hex(bytes));
  }
  return { set: latentSet(shards, dims), identity: await sha256Hex(hashes.join()) };
}

async function main(flags: Flags, signal: AbortSignal): Promise<void> {
  if (
    !flags.vae ||
    !flags.out ||
    !(flags.images || flags.latents) ||
    (flags.images && flags.latents)
  ) {
    throw new UsageError("give --vae, --out, and one of --images or --latents");
  }
  const backendChoice = flags.backend ?? "auto";
  if (!isBackendChoice(backendChoice))
    throw new UsageError(`--backend ${backendChoice} is not a backend`);
  const out = resolve(flags.out);
  const work = resolve(flags.work ?? `${out}.work`);
  const backend = await selectBackend(backendChoice as BackendChoice);
  process.stderr.write(`backend: ${backend.reason}\n`);
  const vae = await loadVaeFolder(flags.vae, resolution(flags.resolution));
  const dims =
    vae.spec.latentShape.channels * vae.spec.latentShape.height * vae.spec.latentShape.width;

  let latents: LatentSet;
  let datasetId: string;
  const images = flags.images
    ? await imageFolder(flags.images, vae.spec.inputResolution)
    : undefined;
  if (images) {
    datasetId = await sha256Hex(`${images.identity}:${vae.identity}`);
    const cache = join(work, "latents", datasetId.slice(0, 16));
    const started = performance.now();
    latents = await extractLatents(images, vae.vae, folderStore(cache), {
      shardSize: count(flags, "shard-size", 1024),
      batchSize: Math.max(1, count(flags, "vae-batch", 16)),
      signal,
      onProgress: (done, total, reused) =>
        process.stderr.write(`latents: ${done}/${total} ${reused ? "(cached)" : "extracted"}\n`),
    });
    process.stderr.write(
      `latents: ${latents.count} in ${cache} (${duration((performance.now() - started) / 1000)})\n`,
    );
  } else {
    const folder = await latentFolder(flags.latents as string, dims, vae.spec.latentShape);
    latents = folder.set;
    datasetId = await sha256Hex(`${folder.identity}:${vae.identity}`);
  }

  const checkpoints = folderStore(join(work, "checkpoints"));
  const saved = await loadCheckpoint(checkpoints, datasetId);
  if (saved && !flags.resume) {
    disposeRun(saved);
    throw new UsageError(
      `${join(work, "checkpoints")} holds a run at epoch ${saved.epoch}/${saved.config.epochs}: --resume continues it, or remove the folder to start over`,
    );
  }
  if (!saved && flags.resume)
    throw new UsageError(`there is no checkpoint to resume in ${join(work, "checkpoints")}`);
  if (saved && TRAINING_FLAGS.some((f) => flags[f] !== undefined)) {
    disposeRun(saved);
    throw new UsageError(
      "a resumed run keeps its checkpoint's training parameters: drop the parameter flags",
    );
  }
  const config =
    saved?.config ??
    resolveTrainConfig(parameters(flags), vae.spec.latentShape, backend.accelerated);
  const data = await prepareTrainData(latents, {
    heldOut: count(flags, "held-out", defaultHeldOut(latents.count)),
    seed: config.seed,
    vae: vae.vae,
    images: images
      ? { source: images, count: count(flags, "probe", DEFAULT_PROBE_IMAGES) }
      : undefined,
  });
  const run = saved ?? (await startRun(config, data));
  if (saved) process.stderr.write(`resuming after epoch ${saved.epoch}/${config.epochs}\n`);
  const started = performance.now();
  const terminal = process.stderr.isTTY;
  let lastDraw = 0;
  process.stdout.write(`${tableHeader()}\n`);
  for (const record of run.history) process.stdout.write(`${epochRow(record, config.epochs)}\n`);
  await train(run, data, {
    signal,
    onStep: (p) => {
      const now = performance.now();
      if (!terminal || (now - lastDraw < 100 && p.step < p.steps)) return;
      lastDraw = now;
      const rate = (p.step * config.batchSize) / ((now - started) / 1000 || 1);
      process.stderr.write(`\r${progressLine(p, config.epochs, rate)}\x1b[K`);
    },
    onEpoch: async (record, r) => {
      if (terminal) process.stderr.write("\r\x1b[K");
      process.stdout.write(`${epochRow(record, config.epochs)}\n`);
      const warning = rectifierWarning(epochMetrics(record));
      if (warning) process.stdout.write(`${warning}\n`);
      await saveCheckpoint(checkpoints, r, datasetId);
    },
  });

  const tokenizer = await exportTokenizer(run, data.normalizer, {
    name: flags.name ?? basename(out),
    vae: vae.spec,
    ...(vae.weights ? { vaeWeights: vae.weights } : {}),
    dataset: {
      name: flags.images
        ? basename(resolve(flags.images))
        : basename(resolve(flags.latents as string)),
      images: latents.count,
    },
  });
  // A resumed run takes no parameter flags, so no thresholds: they are the job's, not the run's.
  const { require } = TrainParameters.parse(parameters(flags));
  const missed = missedRequirements(tokenizer.manifest.evaluation, require);
  if (missed.length > 0) {
    throw new Error(
      `the tokenizer misses the thresholds of --params, so it was not written: ${missed.join("; ")}`,
    );
  }
  for (const [path, bytes] of tokenizer.files) {
    await mkdir(dirname(join(out, path)), { recursive: true });
    await writeFile(join(out, path), bytes);
  }
  await writeFile(join(out, "manifest.json"), tokenizer.manifestBytes);
  const last = run.history.at(-1);
  if (!last) throw new Error("the run has no epochs");
  process.stdout.write(
    `\n${finalReport({
      out,
      hash: tokenizer.hash,
      tokens: config.tokens,
      codes: config.codes,
      images: data.train.length,
      seconds: run.history.reduce((s, r) => s + r.seconds, 0),
      last,
    })}`,
  );
  disposeRun(run);
  vae.vae.dispose();
}

function cli(): void {
  let flags: Flags;
  try {
    flags = parseArgs({ options: OPTIONS, strict: true }).values as Flags;
  } catch (error) {
    process.stderr.write(`revq-train: ${(error as Error).message}\n${helpText()}`);
    process.exit(2);
  }
  if (flags.help) {
    process.stdout.write(helpText());
    return;
  }
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort(new Error("interrupted")));
  main(flags, stop.signal).then(
    () => process.exit(0),
    (error: Error) => {
      if (stop.signal.aborted) {
        process.stderr.write(
          "\nrevq-train: interrupted; the last finished epoch is checkpointed (--resume)\n",
        );
        process.exit(130);
      }
      const usage = error instanceof UsageError || error instanceof TrainConfigError;
      process.stderr.write(`revq-train: ${error.message}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}

cli();
