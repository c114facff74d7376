/**
 * revq train DIR: a new tokenizer from your images. Remotely (the default): upload, a train job
 * on a GPU worker, its progress and per-epoch metrics live from the job's events, the new
 * tokenizer at the end. --offline: the same training code on this machine, by the worker
 * package's revq-train.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, realpathSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Api } from "../api.ts";
import { type Parsed, positiveInt, stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { collectImages, uploadImages } from "../images.ts";
import { onInterrupt } from "../interrupt.ts";
import { followEvents, requireSucceeded } from "../jobs.ts";
import type { Output } from "../output.ts";
import { Job, type JobEvent } from "../schemas.ts";
import { chooseTokenizer } from "../tokenizer-choice.ts";
import { eventLine } from "./jobs.ts";

const help = `usage: revq train DIR... [options]
       revq train DIR --offline --out FOLDER --vae TOKENIZER_FOLDER [options]

Trains a ReVQ tokenizer on your images (folders are searched for .png, .jpg, .jpeg, .webp).
By default on the edge's GPU workers: the images are uploaded, a train job runs, its progress
and per-epoch metrics are shown as they come, and the new tokenizer is yours to use. Ctrl-C
stops watching, not the job (revq jobs cancel stops it). With --offline the same training code
runs on this machine (revq-train) and writes a tokenizer folder.

  --tokenizer <id>    remote: the tokenizer whose VAE to train on (default REVQ_TOKENIZER,
                      else the only one)
  --name <name>       the new tokenizer's name
  --preset <p>        512x16384, 256x65536, 256x262144 or small
  --epochs <n>        epochs (paper: 100)
  --tokens <n>        tokens per image
  --groups <n>        codebook groups (default: one per token)
  --codes <n>         codes per group
  --batch-size <n>    latents per step (paper: 256)
  --seed <n>          random seed
  --params <json>     any training parameters as JSON (docs/training.md); flags win

  --offline           train here instead, with revq-train (the GPU worker package)
  --out <folder>      offline: where to write the tokenizer folder
  --vae <folder>      offline: a tokenizer folder whose VAE to use, or a diffusers DC-AE folder
  --work <folder>     offline: latent cache and checkpoints [<out>.work]
  --resume            offline: continue an interrupted run
  --backend <b>       offline: tensorflow, webgpu, wasm, cpu or auto
${COMMON_HELP}`;

const NUMBERS = ["epochs", "tokens", "groups", "codes", "batch-size", "seed"] as const;

export const train: Command = {
  name: "train",
  summary: "images → a new tokenizer (a train job with live progress, or --offline)",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      tokenizer: { type: "string" },
      name: { type: "string" },
      preset: { type: "string" },
      epochs: { type: "string" },
      tokens: { type: "string" },
      groups: { type: "string" },
      codes: { type: "string" },
      "batch-size": { type: "string" },
      seed: { type: "string" },
      params: { type: "string" },
      offline: { type: "boolean" },
      out: { type: "string" },
      vae: { type: "string" },
      work: { type: "string" },
      resume: { type: "boolean" },
      backend: { type: "string" },
    });
    if (!s) return;
    if (s.parsed.values.offline) return trainOffline(s.parsed);
    for (const flag of ["out", "vae", "work", "resume", "backend"]) {
      if (s.parsed.values[flag] !== undefined) {
        throw usageError(`--${flag} is for --offline training`, "see revq train --help");
      }
    }
    await trainRemote(s.parsed, s.out, s.api());
  },
};

/** The job's parameters: --params, then each flag over it. */
export function trainParameters(parsed: Parsed): Record<string, unknown> {
  let parameters: Record<string, unknown> = {};
  const json = stringOption(parsed, "params");
  if (json !== undefined) {
    try {
      parameters = JSON.parse(json);
    } catch (error) {
      throw usageError(`--params is not JSON: ${(error as Error).message}`);
    }
    if (typeof parameters !== "object" || parameters === null || Array.isArray(parameters)) {
      throw usageError("--params must be a JSON object");
    }
  }
  for (const flag of NUMBERS) {
    const value = flag === "seed" ? seedValue(parsed) : positiveInt(parsed, flag);
    if (value !== undefined) parameters[flag === "batch-size" ? "batchSize" : flag] = value;
  }
  for (const flag of ["name", "preset"]) {
    const value = stringOption(parsed, flag);
    if (value !== undefined) parameters[flag] = value;
  }
  return parameters;
}

function seedValue(parsed: Parsed): number | undefined {
  const text = stringOption(parsed, "seed");
  if (text === undefined) return undefined;
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0) throw usageError(`--seed must be a whole number ≥ 0`);
  return seed;
}

async function trainRemote(parsed: Parsed, out: Output, api: Api): Promise<void> {
  const parameters = trainParameters(parsed);
  const images = await collectImages(parsed.positionals);
  const base = await chooseTokenizer(api, stringOption(parsed, "tokenizer"));
  const upload = out.progress("upload  ");
  const uploaded = await uploadImages(api, images, upload);
  upload.end();
  const created = await api.json("POST", "/v1/jobs", Job, {
    body: {
      kind: "train",
      tokenizer: base.id,
      inputs: { images: uploaded.map((i) => i.id) },
      parameters,
    },
    idempotencyKey: randomUUID(),
  });
  out.note(`train job ${created.id}: ${uploaded.length} images, the VAE of ${base.name}`);
  onInterrupt(
    `job ${created.id} goes on. Follow it: revq jobs events ${created.id} --follow; stop it: revq jobs cancel ${created.id}`,
  );
  const progress = out.progress("train   ");
  const events: JobEvent[] = [];
  const job = await followEvents(api, created.id, (event) => {
    events.push(event);
    if (event.type === "progress") {
      const d = event.data;
      progress.update(
        Number(d.done),
        d.total === undefined ? undefined : Number(d.total),
        String(d.stage ?? ""),
      );
      return;
    }
    // Epoch summaries, worker messages and status changes stay on screen above the bar.
    progress.end();
    out.line(eventLine(event));
  });
  progress.end();
  onInterrupt(undefined);
  out.result({ job, events });
  requireSucceeded(job);
  const tokenizer = job.result?.tokenizer as { id: string; manifestHash: string } | undefined;
  if (tokenizer) {
    out.line(`new tokenizer ${tokenizer.id} (${tokenizer.manifestHash.slice(0, 12)}…)`);
    out.line(`use it: revq tokenize --tokenizer ${tokenizer.id} FILES`);
  }
}

/** revq-train of the GPU worker package, found the way npm links bins. */
function revqTrainPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    ...(process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "revq-train")),
    join(here, "..", "..", "..", "node_modules", ".bin", "revq-train"),
  ];
  const found = candidates.find((path) => path && existsSync(path));
  if (!found) {
    throw new CliError(
      "offline training needs revq-train, which is not installed here",
      EXIT.usage,
      {
        hint: "run it from the revq repository after npm install (it comes with the GPU worker package)",
      },
    );
  }
  return realpathSync(found);
}

async function trainOffline(parsed: Parsed): Promise<void> {
  if (parsed.values.tokenizer !== undefined) {
    throw usageError("--tokenizer is for remote training; offline, --vae names the VAE");
  }
  if (parsed.values.json || parsed.values.url) {
    throw usageError("--json and --url are for remote training");
  }
  if (parsed.positionals.length !== 1) {
    throw usageError("offline training takes one folder of images", "see revq train --help");
  }
  const args = ["--images", parsed.positionals[0]];
  const pass = (flag: string, to = flag) => {
    const value = stringOption(parsed, flag);
    if (value !== undefined) args.push(`--${to}`, value);
  };
  for (const flag of ["out", "vae", "work", "backend", "name", "preset", "params", ...NUMBERS]) {
    pass(flag);
  }
  if (parsed.values.resume) args.push("--resume");
  // revq-train is a TypeScript bin: run it with this Node (22), whatever node PATH holds.
  const child = spawn(process.execPath, [revqTrainPath(), ...args], { stdio: "inherit" });
  // Ctrl-C reaches it too (same process group); it checkpoints and exits 130 on its own.
  process.removeAllListeners("SIGINT");
  process.on("SIGINT", () => undefined);
  const code = await new Promise<number>((resolve) =>
    child.once("exit", (c, signal) => resolve(c ?? (signal === "SIGINT" ? 130 : 1))),
  );
  if (code !== 0) process.exit(code);
}
