/**
 * train: a dataset → a new tokenizer, trained on top of the base tokenizer's VAE.
 *
 * 1. Latents: the dataset's shards under the base's VAE, in the prefix every task on the same
 *    listing and VAE shares (tasks/extract.ts). Shards already there (from extract tasks, an
 *    earlier training, or this task before a lost lease) are read; the missing ones are extracted
 *    here, from the last shard back, so that this task and the extract tasks (leased from the
 *    first) meet in the middle.
 * 2. Training (train/run.ts) with a checkpoint under `state/` after every epoch; a re-leased task
 *    resumes from the last one on whatever worker takes it, the loss curve going on where it
 *    stopped. Progress counts the steps of the epoch under way, its stage names the epoch, and
 *    it says how long the run should still take; each epoch's figures go out as a metric set as
 *    soon as it ends.
 * 3. Export: the tokenizer's files to tokenizers/{hash}/files/, then complete with the manifest
 *    (the edge stores it, checks the files and marks the tokenizer ready). Exporting again after
 *    a lost lease writes the same bytes under the same hash. A tokenizer whose held-out
 *    evaluation misses the job's thresholds (`parameters.require`) is neither written nor
 *    registered: the task fails for good with the figures, so a bad run never becomes usable.
 */
import {
  bucketKeys,
  type DatasetListing,
  defaultHeldOut,
  type LeasedTask,
  missedRequirements,
  type TokenizerManifest,
  TrainParameters,
  type TrainPayload,
} from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import type * as z from "zod";
import type { Tokenizer } from "../pipeline/tokenizer.ts";
import { TaskError } from "../task-error.ts";
import { CheckpointError, loadCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import { resolveTrainConfig, type TrainConfig, TrainConfigError } from "../train/config.ts";
import type { LatentSet } from "../train/dataset.ts";
import { exportTokenizer } from "../train/export.ts";
import { extractLatents, type ImageSource } from "../train/extract.ts";
import { epochMetrics, runMetrics } from "../train/metrics.ts";
import { DEFAULT_PROBE_IMAGES, prepareTrainData } from "../train/prepare.ts";
import { disposeRun, startRun, type TrainRun, train } from "../train/run.ts";
import type { TaskContext, TaskOutcome } from "../worker.ts";
import type { Pipelines } from "./context.ts";
import { readObject, writeObject } from "./io.ts";
import { bucketStore, datasetImages, latentIdentity, readListing } from "./train-io.ts";

type Payload = z.infer<typeof TrainPayload>;

/** Backends on which the distance matrix is cheaper on the device than the host search. */
const ACCELERATED = new Set(["tensorflow", "webgpu", "webgl"]);

export async function runTrain(
  task: LeasedTask,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<TaskOutcome> {
  const payload = task.payload as Payload;
  const { dataset } = payload;
  const parameters = TrainParameters.safeParse(payload.parameters);
  context.progress({ done: 0, stage: "reading the dataset listing" });
  const { signal, bucket } = context;
  const listing = await readListing(bucket, dataset, signal);
  context.progress({ done: 0, stage: "loading the VAE" });
  return pipelines.tokenizers.with(payload.base, { signal, bucket }, async (base) => {
    const config = configure(payload, base);
    const name = (parameters.success && parameters.data.name) || `revq-${task.jobId}`;
    const description = parameters.success ? parameters.data.description : undefined;
    const { run, normalizer } = await trainRun(payload, listing, config, base, context, pipelines);
    try {
      context.progress({ done: 1, total: 1, stage: "exporting the tokenizer" });
      const exported = await exportTokenizer(run, normalizer, {
        name,
        ...(description ? { description } : {}),
        vae: withoutWeights(base.manifest.vae),
        ...(await baseVaeWeights(base, context)),
        dataset: { name: `listing ${dataset.listingHash}`, images: dataset.count },
      });
      requireEvaluation(
        exported.manifest,
        parameters.success ? parameters.data.require : undefined,
      );
      for (const [path, bytes] of exported.files) {
        await writeObject(
          bucket,
          bucketKeys.tokenizerFile(exported.hash, path),
          bytes,
          "application/octet-stream",
          `the tokenizer's ${path}`,
          signal,
        );
      }
      context.log.info("tokenizer exported", { manifestHash: exported.hash });
      return {
        result: { kind: "train", manifest: exported.manifest as Record<string, unknown> },
        metrics: runMetrics(run.history),
      };
    } finally {
      disposeRun(run);
    }
  });
}

/** Fails the task, for good and with the figures, if the tokenizer misses a threshold. */
function requireEvaluation(manifest: TokenizerManifest, require: TrainParameters["require"]): void {
  const missed = missedRequirements(manifest.evaluation, require);
  if (missed.length === 0) return;
  throw new TaskError(
    "evaluation-below-threshold",
    `The trained tokenizer misses the job's thresholds, so it was not registered: ${missed.join("; ")}.`,
    false,
    manifest.evaluation ? { evaluation: manifest.evaluation } : undefined,
  );
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

/** The latents, then the epochs from the last checkpoint (or the start). */
async function trainRun(
  payload: Payload,
  listing: DatasetListing,
  config: TrainConfig,
  base: Tokenizer,
  context: TaskContext,
  pipelines: Pipelines,
) {
  const { signal, bucket } = context;
  const vae = base.vae;
  // Before any extraction: a resumed run has the same configuration (the same parameters).
  const count = payload.dataset.count;
  const heldOut = defaultHeldOut(count);
  if (count - heldOut < config.batchSize) {
    throw new TaskError(
      "dataset-too-small",
      `${count} images (${heldOut} held out) do not make one batch of ${config.batchSize}: add images to the dataset or lower batchSize.`,
      false,
    );
  }
  // Checkpoints, like shards, are only ever used on the latents they were made from.
  const identity = await latentIdentity(payload.dataset, base.manifest.vae);
  const images = datasetImages(bucket, listing, vae.inputResolution, signal);
  const latents = await datasetLatents(images, base, identity, payload, context, pipelines);
  const states = bucketStore(bucket, `${payload.output.checkpoints}state/`, signal);
  const saved = await loadCheckpoint(states, identity).catch((error: unknown) => {
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
  const data = await prepareTrainData(latents, {
    heldOut,
    seed: runConfig.seed,
    vae,
    images: { source: images, count: DEFAULT_PROBE_IMAGES },
  });
  const run: TrainRun = saved ?? (await startRun(runConfig, data));
  if (saved)
    context.log.info("resuming training", { afterEpoch: saved.epoch, epochs: runConfig.epochs });
  const eta = runPace(run.epoch, runConfig.epochs);
  try {
    await train(run, data, {
      signal,
      onStep: (p) =>
        context.progress({
          done: p.step,
          total: p.steps,
          // After its last step the epoch is validated before it ends.
          stage: `epoch ${p.epoch + 1}/${runConfig.epochs}${p.step === p.steps ? " · validating" : ""}`,
          etaSeconds: eta(p.epoch + p.step / p.steps),
        }),
      onEpoch: async (record, r) => {
        await saveCheckpoint(states, r, identity);
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

/**
 * Every shard of the dataset's latents: read where another task (or an earlier attempt) wrote it,
 * extracted here where not, from the last shard back.
 */
async function datasetLatents(
  images: ImageSource,
  base: Tokenizer,
  identity: string,
  payload: Payload,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<LatentSet> {
  const { dataset } = payload;
  const started = performance.now();
  let reused = 0;
  let extracted = 0;
  const latents = await extractLatents(
    images,
    base.vae,
    bucketStore(context.bucket, dataset.latents, context.signal),
    {
      shardSize: dataset.shardSize,
      batchSize: pipelines.batchSize,
      identity,
      signal: context.signal,
      fromLast: true,
      onProgress: (done, total, wasReused) => {
        if (wasReused) reused++;
        else extracted++;
        context.progress({ done, total, stage: "extracting latents" });
      },
    },
  );
  const summary = {
    latentShards: reused + extracted,
    latentShardsReused: reused,
    latentShardsExtracted: extracted,
    latentSeconds: (performance.now() - started) / 1000,
  };
  context.log.info("latents ready", summary);
  context.metrics(summary);
  context.progress({
    done: latents.count,
    total: latents.count,
    stage: `latents: ${reused} shards reused, ${extracted} extracted`,
  });
  return latents;
}

/**
 * The seconds a run from epoch `from` to `epochs` should still take when `at` epochs are done
 * (fractions within one), at its pace since it started here: once an epoch has ended, that
 * pace includes its validation and checkpoint.
 */
function runPace(from: number, epochs: number) {
  const started = performance.now();
  return (at: number): number | undefined => {
    if (at <= from) return undefined;
    const perEpoch = (performance.now() - started) / 1000 / (at - from);
    return perEpoch * (epochs - at);
  };
}

function withoutWeights(vae: Tokenizer["manifest"]["vae"]) {
  const { weights: _weights, ...spec } = vae;
  return spec;
}

/** The base's VAE weights travel on when it ships them (a reference by name otherwise). */
async function baseVaeWeights(base: Tokenizer, { bucket, signal }: TaskContext) {
  const ref = base.manifest.vae.weights;
  if (!ref) return {};
  const key = bucketKeys.tokenizerFile(base.ref.manifestHash, ref.path);
  return {
    vaeWeights: await readObject(bucket, key, "the base tokenizer's VAE weights", signal),
  };
}
