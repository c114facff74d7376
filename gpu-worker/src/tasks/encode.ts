/**
 * encode: images in the bucket → one token stream (docs/token-stream.md), record i for image i:
 * the payload's images, or one shard of a frozen dataset listing (a dataset encode job's shard
 * job), whose images are checked against the ETags the listing froze (dataset-shard.ts).
 *
 * Per image: fetch, decode and fit to the tokenizer's resolution (images/codec.ts), VAE encode on
 * the device (batched with other tasks' images), normalise with the tokenizer's statistics,
 * nearest code per token. Images move in chunks of the batch size, overlapped
 * (pipeline/overlap.ts): while the device encodes a chunk, the next waits behind it and the one
 * after is fetched and decoded, and the previous one's codes are searched. The stream is
 * written once, whole, when every image is done: a failed task leaves no partial output.
 */
import {
  type EncodePayload,
  type LeasedTask,
  normalize,
  TOKEN_STREAM_MEDIA_TYPE,
  writeTokenStream,
} from "@revq/shared";
import type * as z from "zod";
import { encodeLatents } from "../pipeline/device-ops.ts";
import { overlapped } from "../pipeline/overlap.ts";
import type { Tokenizer } from "../pipeline/tokenizer.ts";
import type { TaskContext, TaskOutcome } from "../worker.ts";
import type { Pipelines } from "./context.ts";
import { type EncodeSource, shardSources } from "./dataset-shard.ts";
import { readImage, writeObject } from "./io.ts";

type Payload = z.infer<typeof EncodePayload>;

/** The images to encode, in record order. */
async function sourcesOf(payload: Payload, context: TaskContext): Promise<EncodeSource[]> {
  if (payload.shard) return shardSources(context.bucket, payload.shard, context.signal);
  return payload.images.map((image, index) => ({
    key: image.bucketKey,
    what: `image ${index} (${image.imageId})`,
    expected: image.format.toUpperCase(),
  }));
}

export async function runEncode(
  task: LeasedTask,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<TaskOutcome> {
  const payload = task.payload as Payload;
  const { signal, bucket } = context;
  const started = performance.now();
  const sources = await sourcesOf(payload, context);
  context.progress({ done: 0, total: sources.length, stage: "loading tokenizer" });
  return pipelines.tokenizers.with(payload.tokenizer, { signal, bucket }, async (tokenizer) => {
    const { ids, mse } = await encodeAll(payload, sources, tokenizer, context, pipelines);
    const { tokens, groups } = tokenizer.layout;
    const stream = writeTokenStream(
      {
        tokenizerHash: payload.tokenizer.manifestHash,
        tokensPerRecord: tokens,
        codesPerGroup: tokenizer.manifest.quantizer.codesPerGroup,
        groups,
      },
      ids,
    );
    signal.throwIfAborted();
    context.progress({ done: sources.length, total: sources.length, stage: "writing" });
    await writeObject(
      bucket,
      payload.output.tokens,
      stream,
      TOKEN_STREAM_MEDIA_TYPE,
      "the token stream",
      signal,
    );
    const seconds = (performance.now() - started) / 1000;
    return { result: { kind: "encode" }, metrics: encodeMetrics(mse, seconds) };
  });
}

async function encodeAll(
  payload: Payload,
  sources: EncodeSource[],
  tokenizer: Tokenizer,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<{ ids: Uint32Array; mse: Float64Array }> {
  const { signal } = context;
  const count = sources.length;
  const { tokens, codeDim } = tokenizer.layout;
  const ids = new Uint32Array(count * tokens);
  const mse = new Float64Array(count);
  const chunk = pipelines.batchSize;
  const key = `encode:${payload.tokenizer.manifestHash}`;
  await overlapped({
    chunks: Math.ceil(count / chunk),
    signal,
    load: (n) =>
      Promise.all(
        sources
          .slice(n * chunk, (n + 1) * chunk)
          .map((source) => loadImage(source, tokenizer, context)),
      ),
    compute: (images) =>
      pipelines.batcher.submit(
        key,
        (batch: Float32Array[]) => encodeLatents(tokenizer.vae, batch),
        images,
        signal,
      ),
    consume: (latents, n) => {
      latents.forEach((latent, i) => {
        const index = n * chunk + i;
        const normalized = normalize(latent, tokenizer.mean, tokenizer.std);
        const found = tokenizer.index.search(normalized, tokens);
        ids.set(found.ids, index * tokens);
        let sum = 0;
        for (const d of found.squaredDistances) sum += d;
        mse[index] = sum / (tokens * codeDim);
      });
      context.progress({ done: n * chunk + latents.length, total: count, stage: "encoding" });
    },
  });
  return { ids, mse };
}

function loadImage(
  source: EncodeSource,
  tokenizer: Tokenizer,
  context: TaskContext,
): Promise<Float32Array> {
  const { key, what, expected, check } = source;
  return readImage(
    context.bucket,
    key,
    tokenizer.vae.inputResolution,
    what,
    expected,
    context.signal,
    check,
  );
}

/**
 * Quantization error per image (mean squared distance to the chosen codes per latent value, in
 * normalised units: 1 ≈ knowing nothing), its mean and worst, and the time taken.
 */
function encodeMetrics(mse: Float64Array, seconds: number): Record<string, number> {
  const metrics: Record<string, number> = {
    images: mse.length,
    seconds,
    imagesPerSecond: mse.length / seconds,
    quantMseMean: mse.reduce((a, b) => a + b, 0) / mse.length,
    quantMseMax: Math.max(...mse),
  };
  mse.forEach((value, i) => {
    metrics[`quantMse.${i}`] = value;
  });
  return metrics;
}
