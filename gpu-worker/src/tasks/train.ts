/**
 * train: the job's images → a new tokenizer, trained on top of the base tokenizer's VAE.
 *
 * 1. Latents: every image encoded once, in shards kept under the job's checkpoints prefix
 *    (`latents/<dataset>/`), so a task that comes back after a lost lease extracts only what is
 *    missing.
 * 2. Training (train/run.ts) with a checkpoint under `state/` after every epoch; a re-leased task
 *    resumes from the last one on whatever worker takes it, the loss curve going on where it
 *    stopped. Progress counts steps over the whole run; its stage names the epoch and sums up
 *    the last finished one.
 * 3. Export: the tokenizer's files to tokenizers/{hash}/files/, then complete with the manifest
 *    (the edge stores it, checks the files and marks the tokenizer ready). Exporting again after
 *    a lost lease writes the same bytes under the same hash.
 */
import {
  bucketKeys,
  canonicalJson,
  type LeasedTask,
  sha256Hex,
  type TrainPayload,
} from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import type * as z from "zod";
import type { Tokenizer } from "../pipeline/tokenizer.ts";
import { CheckpointError, loadCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import {
  resolveTrainConfig,
  type TrainConfig,
  TrainConfigError,
  TrainParameters,
} from "../train/config.ts";
import { exportTokenizer } from "../train/export.ts";
import { extractLatents } from "../train/extract.ts";
import { epochMetrics } from "../train/metrics.ts";
import { DEFAULT_PROBE_IMAGES, defaultHeldOut, prepareTrainData } from "../train/prepare.ts";
import { disposeRun, type EpochRecord, startRun, type TrainRun, train } from "../train/run.ts";
import type { TaskContext, TaskOutcome } from "../worker.ts";
import type { Pipelines } from "./context.ts";
import { TaskError } from "./errors.ts";
import { readObject, writeObject } from "./io.ts";
import { bucketImages, bucketStore } from "./train-io.ts";

type Payload = z.infer<typeof TrainPayload>;

/** Images per latent shard: the unit a re-leased task skips. */
const SHARD_SIZE = 256;

/** Backends on which the distance matrix is cheaper on the device than the host search. */
const ACCELERATED = new Set(["tensorflow", "webgpu", "webgl"]);

export async function runTrain(
  task: LeasedTask,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<TaskOutcome> {
  const payload = task.payload as Payload;
  if (!payload.base) {
    throw new TaskError(
      "base-tokenizer-required",
      "A train job needs `tokenizer`: the tokenizer whose VAE to train on.",
      false,
    );
  }
  const parameters = TrainParameters.safeParse(payload.parameters);
  context.progress({ done: 0, stage: "loading the VAE" });
  return pipelines.tokenizers.with(payload.base, { signal: context.signal }, async (base) => {
    const config = configure(payload, base);
    const name = (parameters.success && parameters.data.name) || `revq-${task.jobId}`;
    const description = parameters.success ? parameters.data.description : undefined;
    const { run, normalizer } = await trainRun(payload, config, base, context, pipelines);
    try {
      const last = run.history.at(-1) as EpochRecord;
      context.progress({ done: 1, total: 1, stage: "exporting the tokenizer" });
      const exported = await exportTokenizer(run, normalizer, {
        name,
        ...(description ? { description } : {}),
        vae: withoutWeights(base.manifest.vae),
        ...(await baseVaeWeights(base, pipelines, context.signal)),
        dataset: { name: `job ${task.jobId}`, images: payload.images.length },
      });
      for (const [path, bytes] of exported.files) {
        await writeObject(
          pipelines.bucket,
          bucketKeys.tokenizerFile(exported.hash, path),
          bytes,
          "application/octet-stream",
          `the tokenizer's ${path}`,
          context.signal,
        );
      }
      context.log.info("tokenizer exported", { manifestHash: exported.hash });
      return {
        result: { kind: "train", manifest: exported.manifest as Record<string, unknown> },
        metrics: epochMetrics(last),
      };
    } finally {
      disposeRun(run);
    }
  });
}

function configure(payload: Payload, base: Tokenizer): TrainConfig {
  try {
    return resolveTrainConfig(
      payload.parameters,
      base.vae.latentShape,
      ACCELERATED.has(tf.getBackend()),
    );
  } catch (error) {
    if (error instanceof TrainConfigError)
      throw new TaskError("parameters-invalid", error.message, false);
    throw error;
  }
}

/** Extraction, then the epochs from the last checkpoint (or the start). */
async function trainRun(
  payload: Payload,
  config: TrainConfig,
  base: Tokenizer,
  context: TaskContext,
  pipelines: Pipelines,
) {
  const { signal } = context;
  const { bucket } = pipelines;
  const vae = base.vae;
  const dataset = await sha256Hex(
    canonicalJson({ images: payload.images.map((i) => i.bucketKey), vae: base.manifest.vae }),
  );
  const images = bucketImages(bucket, payload.images, vae.inputResolution, signal);
  const latents = await extractLatents(
    images,
    vae,
    bucketStore(bucket, `${payload.output.checkpoints}latents/${dataset.slice(0, 16)}/`, signal),
    {
      shardSize: SHARD_SIZE,
      batchSize: pipelines.batchSize,
      signal,
      onProgress: (done, total) => context.progress({ done, total, stage: "extracting latents" }),
    },
  );
  const states = bucketStore(bucket, `${payload.output.checkpoints}state/`, signal);
  const saved = await loadCheckpoint(states, dataset).catch((error: unknown) => {
    if (error instanceof CheckpointError) {
      throw new TaskError(
        "checkpoint-damaged",
        `The job's checkpoint is unusable: ${error.message}.`,
        false,
      );
    }
    throw error;
  });
  const runConfig = saved?.config ?? config;
  const heldOut = defaultHeldOut(latents.count);
  if (latents.count - heldOut < runConfig.batchSize) {
    throw new TaskError(
      "dataset-too-small",
      `${latents.count} images (${heldOut} held out) do not make one batch of ${runConfig.batchSize}: upload more or lower batchSize.`,
      false,
    );
  }
  const data = await prepareTrainData(latents, {
    heldOut,
    seed: runConfig.seed,
    images: { source: images, vae, count: DEFAULT_PROBE_IMAGES },
  });
  const run: TrainRun = saved ?? (await startRun(runConfig, data));
  if (saved)
    context.log.info("resuming training", { afterEpoch: saved.epoch, epochs: runConfig.epochs });
  const steps = Math.floor(data.train.length / runConfig.batchSize);
  const total = steps * runConfig.epochs;
  // Every step's progress carries the last finished epoch's summary: whichever progress a
  // heartbeat happens to send, the job's events follow the curve.
  let last = run.history.length > 0 ? epochSummary(run.history[run.history.length - 1]) : "";
  try {
    await train(run, data, {
      signal,
      onStep: (p) =>
        context.progress({
          done: p.epoch * steps + p.step,
          total,
          stage: `epoch ${p.epoch + 1}/${runConfig.epochs}${last ? ` · ${last}` : ""}`,
        }),
      onEpoch: async (record, r) => {
        await saveCheckpoint(states, r, dataset);
        last = epochSummary(record);
        context.progress({ done: r.epoch * steps, total, stage: last });
        context.metrics(epochMetrics(record));
        context.log.info("epoch done", epochMetrics(record));
      },
    });
  } catch (error) {
    disposeRun(run);
    throw error;
  }
  return { run, normalizer: data.normalizer };
}

/** The epoch in a few words for the job's progress (its stage holds at most 100 characters). */
function epochSummary(r: EpochRecord): string {
  const v = r.validation;
  const val = v ? `, val ${v.latentMse.toPrecision(4)}→${v.rectifiedMse.toPrecision(4)}` : "";
  return `after epoch ${r.epoch + 1}: loss ${r.lossQuantizer.toPrecision(4)}+${r.lossRectifier.toPrecision(4)}${val}`.slice(
    0,
    80,
  );
}

function withoutWeights(vae: Tokenizer["manifest"]["vae"]) {
  const { weights: _weights, ...spec } = vae;
  return spec;
}

/** The base's VAE weights travel on when it ships them (a reference by name otherwise). */
async function baseVaeWeights(base: Tokenizer, pipelines: Pipelines, signal: AbortSignal) {
  const ref = base.manifest.vae.weights;
  if (!ref) return {};
  const key = bucketKeys.tokenizerFile(base.ref.manifestHash, ref.path);
  return {
    vaeWeights: await readObject(pipelines.bucket, key, "the base tokenizer's VAE weights", signal),
  };
}
