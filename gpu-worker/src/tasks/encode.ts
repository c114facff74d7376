/**
 * encode: images in the bucket → one token stream (docs/token-stream.md), record i for image i.
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
import { readImage, writeObject } from "./io.ts";

type Payload = z.infer<typeof EncodePayload>;

export async function runEncode(
  task: LeasedTask,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<TaskOutcome> {
  const payload = task.payload as Payload;
  const { signal, bucket } = context;
  const started = performance.now();
  context.progress({ done: 0, total: payload.images.length, stage: "loading tokenizer" });
  return pipelines.tokenizers.with(payload.tokenizer, { signal, bucket }, async (tokenizer) => {
    const { ids, mse } = await encodeAll(payload, tokenizer, context, pipelines);
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
    context.progress({
      done: payload.images.length,
      total: payload.images.length,
      stage: "writing",
    });
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
  tokenizer: Tokenizer,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<{ ids: Uint32Array; mse: Float64Array }> {
  const { signal } = context;
  const count = payload.images.length;
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
        payload.images
          .slice(n * chunk, (n + 1) * chunk)
          .map((_, i) => loadImage(payload, n * chunk + i, tokenizer, context)),
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
  payload: Payload,
  index: number,
  tokenizer: Tokenizer,
  context: TaskContext,
): Promise<Float32Array> {
  const image = payload.images[index];
  return readImage(
    context.bucket,
    image.bucketKey,
    tokenizer.vae.inputResolution,
    `image ${index} (${image.imageId})`,
    image.format.toUpperCase(),
    context.signal,
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
