/**
 * reconstruct: a token stream → one PNG per record, at output.images[i] for record i, and with
 * output.latents the VAE latents they were decoded from, all records in one float32 .npy.
 *
 * The stream is read whole and checked (CRCs, ids in range) and must have been made with this
 * task's tokenizer and its sizes. Per record: codebook lookup (exact), then on the device
 * (batched with other tasks' records) rectifier, de-normalisation and VAE decoder; then PNG.
 * Each image is written as soon as it is ready; the edge marks the job done only when all are
 * there, and a retry overwrites the same keys.
 */
import {
  FormatError,
  type LeasedTask,
  lookupCodes,
  NPY_MEDIA_TYPE,
  type ReconstructPayload,
  readTokenStream,
  type TokenStreamHeader,
  writeNpy,
} from "@revq/shared";
import type * as z from "zod";
import { encodePng } from "../images/codec.ts";
import { decodeImages } from "../pipeline/device-ops.ts";
import { overlapped } from "../pipeline/overlap.ts";
import type { Tokenizer } from "../pipeline/tokenizer.ts";
import { TaskError } from "../task-error.ts";
import type { TaskContext, TaskOutcome } from "../worker.ts";
import type { Pipelines } from "./context.ts";
import { readObject, writeObject } from "./io.ts";

type Payload = z.infer<typeof ReconstructPayload>;

export async function runReconstruct(
  task: LeasedTask,
  context: TaskContext,
  pipelines: Pipelines,
): Promise<TaskOutcome> {
  const payload = task.payload as Payload;
  const { signal, bucket } = context;
  const started = performance.now();
  const count = payload.input.recordCount;
  if (payload.output.images.length !== count) {
    throw new TaskError(
      "invalid-task",
      `The task names ${payload.output.images.length} output images for ${count} records.`,
      false,
    );
  }
  context.progress({ done: 0, total: count, stage: "loading tokenizer" });
  return pipelines.tokenizers.with(payload.tokenizer, { signal, bucket }, async (tokenizer) => {
    const bytes = await readObject(bucket, payload.input.tokens, "the token stream", signal);
    const ids = readTokens(bytes, payload, tokenizer);
    const { tokens } = tokenizer.layout;
    const key = `decode:${payload.tokenizer.manifestHash}`;
    const size = tokenizer.vae.inputResolution;
    const { channels, height, width } = tokenizer.manifest.vae.latentShape;
    const latentValues = channels * height * width;
    // (N, C, H, W): a reconstruct job has a few thousand records at most, so it fits whole.
    const latents =
      payload.output.latents === undefined
        ? undefined
        : { key: payload.output.latents, values: new Float32Array(count * latentValues) };
    const chunk = pipelines.batchSize;
    const writes: Promise<void>[] = [];
    // The next chunks' codes are looked up and queued while the device decodes (overlap.ts).
    await overlapped({
      chunks: Math.ceil(count / chunk),
      signal,
      load: async (n) =>
        Array.from({ length: Math.min(chunk, count - n * chunk) }, (_, i) => {
          const index = n * chunk + i;
          return lookupCodes(
            tokenizer.codebook,
            ids.subarray(index * tokens, (index + 1) * tokens),
            tokens,
          );
        }),
      compute: (quantized) =>
        pipelines.batcher.submit(
          key,
          (batch: Float32Array[]) => decodeImages(tokenizer, batch),
          quantized,
          signal,
        ),
      consume: (decoded, n) => {
        for (const [i, { image, latent }] of decoded.entries()) {
          const index = n * chunk + i;
          latents?.values.set(latent, index * latentValues);
          const write = encodePng(image, size).then((png) =>
            writeObject(
              bucket,
              payload.output.images[index],
              png,
              "image/png",
              `output image ${index}`,
              signal,
            ),
          );
          write.catch(() => undefined); // awaited below
          writes.push(write);
        }
        context.progress({ done: n * chunk + decoded.length, total: count, stage: "decoding" });
      },
    });
    await Promise.all(writes);
    if (latents) {
      const npy = writeNpy(latents.values, [count, channels, height, width]);
      await writeObject(bucket, latents.key, npy, NPY_MEDIA_TYPE, "the latents", signal);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      result: { kind: "reconstruct" },
      metrics: { images: count, seconds, imagesPerSecond: count / seconds },
    };
  });
}

/** The stream's ids, after checking that it is whole and belongs to this task's tokenizer. */
function readTokens(bytes: Uint8Array, payload: Payload, tokenizer: Tokenizer): Uint32Array {
  let header: TokenStreamHeader;
  let tokens: Uint32Array;
  try {
    ({ header, tokens } = readTokenStream(bytes));
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    throw new TaskError("tokens-invalid", `The token stream is invalid: ${error.message}`, false);
  }
  const { quantizer } = tokenizer.manifest;
  const problems = [
    header.tokenizerHash !== payload.tokenizer.manifestHash &&
      `was made with tokenizer ${header.tokenizerHash}, not ${payload.tokenizer.manifestHash}`,
    header.recordCount !== payload.input.recordCount &&
      `has ${header.recordCount} records; the task says ${payload.input.recordCount}`,
    (header.tokensPerRecord !== quantizer.tokens ||
      header.groups !== quantizer.groups ||
      header.codesPerGroup !== quantizer.codesPerGroup) &&
      `has T=${header.tokensPerRecord}, G=${header.groups}, K=${header.codesPerGroup}; the tokenizer has T=${quantizer.tokens}, G=${quantizer.groups}, K=${quantizer.codesPerGroup}`,
  ].filter((p): p is string => typeof p === "string");
  if (problems.length > 0) {
    throw new TaskError("tokens-invalid", `The token stream ${problems.join("; ")}.`, false);
  }
  return tokens;
}
