/**
 * revq train DIR: a new tokenizer from your images. Remotely (the default): the images go into a
 * new dataset at the edge (as revq datasets add sends them), a train job on it runs on the GPU
 * workers, its extract jobs and then its progress (the epoch's steps, the time left) and a table
 * row per epoch are shown live, the new tokenizer at the end. --offline: the same training code on this machine, by the worker
 * package's revq-train.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, realpathSync } from "node:fs";
import { basename, delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Dataset, Job, type JobEvent, Progress, TrainParameters } from "@revq/shared";
import type { Api } from "../api.ts";
import { type Parsed, positiveInt, stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { ADD_OPTIONS, addHelp, addLimits, resumeCommand } from "../dataset-upload.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { evaluationLines } from "../evaluation.ts";
import { ExtractJobs } from "../extract-jobs.ts";
import { type BatchLimits, collectImages, type LocalImage } from "../images.ts";
import { onInterrupt } from "../interrupt.ts";
import { followEvents, requireSucceeded } from "../jobs.ts";
import type { Output } from "../output.ts";
import { progressStage } from "../progress.ts";
import { namedTokenizer } from "../tokenizer-choice.ts";
import { checkEnoughImages, trainingDataset } from "../train-dataset.ts";
import { EpochTable, epochMetricsOf } from "../train-report.ts";
import { datasetContents } from "./datasets.ts";
import { eventLine } from "./jobs.ts";

const help = `usage: revq train DIR... [options]
       revq train --dataset ID [options]
       revq train DIR --offline --out FOLDER --vae TOKENIZER_FOLDER [options]

Trains a ReVQ tokenizer on your images (folders are searched for .png, .jpg, .jpeg, .webp).
By default on the edge's GPU workers: the images go into a dataset named after the folder (as
revq datasets add sends them; one an earlier run of the same images left is resumed, and only
the images it lacks are sent), a train job runs on it, the extraction of its latents and then
its progress (the epoch's steps, the time left) and a table row per epoch are shown as they
come, and the new tokenizer is yours to use. --dataset
trains on a dataset already at the edge instead (revq datasets). Ctrl-C stops watching, not
the job (revq jobs cancel stops it). With --offline the same training code runs on this
machine (revq-train) and writes a tokenizer folder.

  --tokenizer <id>    remote: the tokenizer whose VAE to train on (default REVQ_TOKENIZER,
                      else the edge's default tokenizer)
  --dataset <id>      remote: train on this dataset; no DIR, nothing uploaded
  --dataset-name <n>  remote: the dataset's name [the first DIR's name]
${addHelp("remote")}  --name <name>       the new tokenizer's name
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
      dataset: { type: "string" },
      "dataset-name": { type: "string" },
      ...ADD_OPTIONS,
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
    await trainRemote(s.parsed, s.out, s.api);
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

async function trainRemote(parsed: Parsed, out: Output, connect: () => Api): Promise<void> {
  const parameters = trainParameters(parsed);
  const existing = stringOption(parsed, "dataset");
  if (existing !== undefined && parsed.positionals.length > 0) {
    throw usageError("give folders of images or --dataset, not both", "see revq train --help");
  }
  // What can be checked here is, before anything is sent.
  checkParameters(parameters);
  const images = existing === undefined ? await collectImages(parsed.positionals, out) : [];
  if (existing === undefined) checkEnoughImages(images.length, parameters);
  const limits = addLimits(parsed);
  const api = connect();
  // None named: the edge trains on the VAE of its DEFAULT_TOKENIZER.
  const base = await namedTokenizer(api, stringOption(parsed, "tokenizer"));
  const dataset =
    existing === undefined
      ? await datasetOf(api, out, parsed, images, limits)
      : await api.json("GET", `/v1/datasets/${encodeURIComponent(existing)}`, Dataset);
  // A prefix dataset is counted only when the job freezes it: the worker checks that one.
  if (dataset.imageCount !== null) checkEnoughImages(dataset.imageCount, parameters);
  const created = await createTrainJob(api, dataset, base?.id, parameters);
  const vae = base?.name ?? `${created.baseTokenizer?.id} (the edge's default tokenizer)`;
  out.note(
    `train job ${created.id}: dataset ${dataset.id} ${JSON.stringify(dataset.name)} (${datasetContents(dataset)}), the VAE of ${vae}`,
  );
  onInterrupt(
    `job ${created.id} goes on. Follow it: revq jobs events ${created.id} --follow; stop it: revq jobs cancel ${created.id}`,
  );
  const extract = new ExtractJobs(api, out, created.extractJobs ?? []);
  const progress = out.progress("train   ");
  const table = new EpochTable();
  const events: JobEvent[] = [];
  const job = await followEvents(
    api,
    created.id,
    (event) => {
      events.push(event);
      if (event.type === "progress") {
        // While extract jobs run, the progress line is theirs.
        const p = Progress.safeParse(event.data);
        if (!extract.active && p.success) {
          progress.update(p.data.done, p.data.total, progressStage(p.data));
        }
        return;
      }
      // Epoch rows, worker messages and status changes stay on screen above the bar.
      progress.end();
      extract.clear();
      const epoch = epochMetricsOf(event);
      for (const line of epoch ? table.lines(epoch) : [eventLine(event)]) out.line(line);
    },
    { onPoll: () => extract.poll() },
  );
  // A last look: extract jobs that ended since the last reading are told of too.
  await extract.poll();
  extract.clear();
  progress.end();
  onInterrupt(undefined);
  out.result({ dataset, job, events });
  // Also when it failed for missing its thresholds: the figures say by how much.
  for (const line of job.evaluation ? evaluationLines(job.evaluation) : []) out.line(line);
  requireSucceeded(job);
  const { tokenizer } = job;
  if (tokenizer) {
    out.line(`new tokenizer ${tokenizer.id} (${tokenizer.manifestHash.slice(0, 12)}…)`);
    out.line(`use it: revq tokenize --tokenizer ${tokenizer.id} FILES`);
  }
}

/** The job's parameters as the edge will check them, before the images go up. */
function checkParameters(parameters: Record<string, unknown>): void {
  const parsed = TrainParameters.safeParse(parameters);
  if (parsed.success) return;
  const problems = parsed.error.issues.map(
    (i) => `${i.path.join(".") || "parameters"}: ${i.message}`,
  );
  throw usageError(`invalid training parameters: ${problems.join("; ")}`, "see docs/training.md");
}

/**
 * The images as a dataset named after the first folder (or --dataset-name): an earlier run's of
 * that name is resumed (a failed upload, or a job that failed), so a retry uploads only the rest.
 */
function datasetOf(
  api: Api,
  out: Output,
  parsed: Parsed,
  images: LocalImage[],
  limits: BatchLimits,
): Promise<Dataset> {
  const name = stringOption(parsed, "dataset-name") ?? basename(resolve(parsed.positionals[0]));
  return trainingDataset(api, out, name, images, {
    limits,
    resume: (id, done) =>
      `run the same revq train again (it resumes), or ${resumeCommand(id, parsed.positionals, parsed, done)}, then revq train --dataset ${id}`,
  });
}

/** The train job, with a hint when the edge has no default tokenizer and none was named. */
async function createTrainJob(
  api: Api,
  dataset: Dataset,
  baseTokenizer: string | undefined,
  parameters: Record<string, unknown>,
): Promise<Job> {
  try {
    return await api.json("POST", "/v1/jobs", Job, {
      body: {
        kind: "train",
        ...(baseTokenizer === undefined ? {} : { baseTokenizer }),
        inputs: { dataset: dataset.id },
        parameters,
      },
      idempotencyKey: randomUUID(),
    });
  } catch (error) {
    if (!(error instanceof CliError) || error.code !== "tokenizer-required") throw error;
    throw new CliError(error.message, error.exitCode, {
      code: error.code,
      hint: `name one: revq train --dataset ${dataset.id} --tokenizer ID (or set REVQ_TOKENIZER); revq tokenizers lists them`,
    });
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
  for (const flag of ["dataset", "dataset-name", ...Object.keys(ADD_OPTIONS)]) {
    if (parsed.values[flag] !== undefined) throw usageError(`--${flag} is for remote training`);
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
