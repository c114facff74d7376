/**
 * extract: the listed shards of a dataset's latents under a VAE (train/extract.ts), written to
 * the dataset's shared latents prefix. The edge cuts a training's shards into extract tasks that
 * any worker may lease, first shard first, while the train task extracts from the last one back
 * (tasks/train.ts): between them every shard is encoded about once. A shard already stored whole
 * is kept, so a re-leased task, or one a train task overtook, does only what is missing.
 */
import { type ExtractPayload, type LeasedTask, latentShardCount } from "@revq/shared";
import type * as z from "zod";
import { TaskError } from "../task-error.ts";
import { ensureShard } from "../train/extract.ts";
import type { TaskContext, TaskOutcome } from "../worker.ts";
import type { Pipelines } from "./context.ts";
import { bucketStore, datasetImages, latentIdentity, readListing } from "./train-io.ts";

type Payload = z.infer<typeof ExtractPayload>;

export async function runExtract(
  task: LeasedTask,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<TaskOutcome> {
  const payload = task.payload as Payload;
  const { dataset, shards } = payload;
  const { signal, bucket } = context;
  const started = performance.now();
  const shardCount = latentShardCount(dataset.count, dataset.shardSize);
  const outside = shards.find((index) => index >= shardCount);
  if (outside !== undefined) {
    throw new TaskError(
      "shard-out-of-range",
      `Shard ${outside} is not one of the dataset's ${shardCount} (${dataset.count} images, ${dataset.shardSize} a shard).`,
      false,
    );
  }
  // Images per listed shard: all but the dataset's last shard are full.
  const sizes = shards.map((i) =>
    Math.min(dataset.shardSize, dataset.count - i * dataset.shardSize),
  );
  const total = sizes.reduce((a, b) => a + b, 0);
  context.progress({ done: 0, total, stage: "reading the dataset listing" });
  const listing = await readListing(bucket, dataset, signal);
  context.progress({ done: 0, total, stage: "loading the VAE" });
  return pipelines.tokenizers.with(payload.vae, { signal, bucket }, async (tokenizer) => {
    const { vae } = tokenizer;
    const images = datasetImages(bucket, listing, vae.inputResolution, signal);
    const store = bucketStore(bucket, dataset.latents, signal);
    const options = {
      shardSize: dataset.shardSize,
      batchSize: pipelines.batchSize,
      identity: await latentIdentity(dataset, tokenizer.manifest.vae),
      signal,
    };
    let done = 0;
    let reused = 0;
    // Images/s of each shard encoded here (fetch, decode, VAE, write), by shard index.
    const rates: Record<string, number> = {};
    for (const [n, index] of shards.entries()) {
      const stage = `extracting latents: shard ${index} (${n + 1} of ${shards.length})`;
      const shardStarted = performance.now();
      const shard = await ensureShard(images, vae, store, index, {
        ...options,
        onEncoded: (encoded) => context.progress({ done: done + encoded, total, stage }),
      });
      if (shard.reused) reused++;
      else
        rates[`imagesPerSecond.${index}`] = sizes[n] / ((performance.now() - shardStarted) / 1000);
      done += sizes[n];
      context.progress({ done, total, stage });
    }
    const metrics = {
      shards: shards.length,
      reused,
      extracted: shards.length - reused,
      images: total,
      seconds: (performance.now() - started) / 1000,
      ...rates,
    };
    context.log.info("latents extracted", metrics);
    return { result: { kind: "extract" }, metrics };
  });
}
