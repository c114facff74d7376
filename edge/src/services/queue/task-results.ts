/**
 * Checks what a worker says it produced before its job is marked succeeded: the outputs named in
 * the task payload must be in the bucket and be what they claim. Returns the job's result.
 */
import {
  FormatError,
  latentShardName,
  readTokenStreamHeader,
  shardLength,
  type TaskPayload,
  type TaskResult,
  TOKEN_STREAM_HEADER_BYTES,
  tokenStreamByteLength,
} from "@revq/shared";
import type { Db } from "../../db/client.ts";
import type {
  EncodeResult,
  ExtractResult,
  JobResult,
  ReconstructResult,
  TrainResult,
} from "../../db/job-results.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";
import { manifestOf, registerTokenizer } from "../tokenizers.ts";

function invalid(detail: string): HttpProblem {
  return new HttpProblem(422, "invalid-result", detail);
}

async function checkEncode(
  env: Env,
  payload: Extract<TaskPayload, { kind: "encode" }>,
): Promise<EncodeResult> {
  const key = payload.output.tokens;
  const object = await env.BUCKET.get(key, {
    range: { offset: 0, length: TOKEN_STREAM_HEADER_BYTES },
  });
  if (!object) throw invalid(`No token stream at ${key}.`);
  let header: ReturnType<typeof readTokenStreamHeader>;
  try {
    header = readTokenStreamHeader(new Uint8Array(await object.arrayBuffer()));
  } catch (error) {
    if (error instanceof FormatError)
      throw invalid(`The token stream at ${key} is invalid: ${error.message}`);
    throw error;
  }
  if (header.tokenizerHash !== payload.tokenizer.manifestHash) {
    throw invalid(
      `The token stream names tokenizer ${header.tokenizerHash}; the task's is ${payload.tokenizer.manifestHash}.`,
    );
  }
  const { shard } = payload;
  const images = shard
    ? shardLength(shard.count, shard.shardSize, shard.index)
    : payload.images.length;
  if (header.recordCount !== images) {
    throw invalid(`The token stream has ${header.recordCount} records for ${images} images.`);
  }
  const expected = tokenStreamByteLength(header);
  if (object.size !== expected) {
    throw invalid(
      `The token stream at ${key} has ${object.size} bytes; its header implies ${expected}.`,
    );
  }
  const { tokenizerHash, recordCount, tokensPerRecord, codesPerGroup, groups, bitsPerToken } =
    header;
  return {
    tokens: {
      bytes: object.size,
      recordCount,
      tokensPerRecord,
      codesPerGroup,
      groups,
      bitsPerToken,
      tokenizerHash,
      etag: object.etag,
    },
  };
}

async function checkReconstruct(
  env: Env,
  payload: Extract<TaskPayload, { kind: "reconstruct" }>,
): Promise<ReconstructResult> {
  const heads = await Promise.all(payload.output.images.map((key) => env.BUCKET.head(key)));
  const found = heads.filter((head) => head !== null);
  if (found.length < heads.length) {
    const missing = payload.output.images.filter((_, i) => !heads[i]);
    throw invalid(
      `${missing.length} of ${heads.length} output images are missing, the first ${missing[0]}.`,
    );
  }
  const images = found.map((head, index) => ({ index, bytes: head.size, etag: head.etag }));
  if (!payload.output.latents) return { images };
  const latents = await env.BUCKET.head(payload.output.latents);
  if (!latents) throw invalid(`The latents ${payload.output.latents} are missing.`);
  return { images, latents: { bytes: latents.size, etag: latents.etag } };
}

async function checkExtract(
  env: Env,
  payload: Extract<TaskPayload, { kind: "extract" }>,
): Promise<ExtractResult> {
  const keys = payload.shards.map((i) => payload.dataset.latents + latentShardName(i));
  const heads = await Promise.all(keys.map((key) => env.BUCKET.head(key)));
  const missing = keys.filter((_, i) => !heads[i]);
  if (missing.length > 0) {
    throw invalid(
      `${missing.length} of the ${keys.length} latent shards this task extracts are missing, the first ${missing[0]}.`,
    );
  }
  return {
    shards: payload.shards.map((index, i) => {
      const head = heads[i] as R2Object;
      return { index, bytes: head.size, etag: head.etag };
    }),
  };
}

async function checkTrain(
  env: Env,
  db: Db,
  tenantId: string,
  manifest: unknown,
): Promise<TrainResult> {
  let registered: Awaited<ReturnType<typeof registerTokenizer>>;
  try {
    registered = await registerTokenizer(env, db, tenantId, manifest);
  } catch (error) {
    if (error instanceof FormatError)
      throw invalid(`The trained tokenizer's manifest is invalid: ${error.message}`);
    throw error;
  }
  if (registered.problems.length > 0) {
    const list = registered.problems.map((p) => `${p.path} (${p.problem})`).join(", ");
    throw invalid(`The trained tokenizer's files are not all in the bucket: ${list}.`);
  }
  const { evaluation } = manifestOf(registered.row);
  return {
    tokenizer: { id: registered.row.id, manifestHash: registered.row.manifestHash },
    ...(evaluation ? { evaluation } : {}),
  };
}

export async function checkTaskResult(
  env: Env,
  db: Db,
  tenantId: string,
  payload: TaskPayload,
  result: TaskResult,
): Promise<JobResult> {
  if (result.kind !== payload.kind) {
    throw invalid(`The result is for a ${result.kind} task; this task is ${payload.kind}.`);
  }
  switch (payload.kind) {
    case "encode":
      return checkEncode(env, payload);
    case "reconstruct":
      return checkReconstruct(env, payload);
    case "extract":
      return checkExtract(env, payload);
    case "train":
      return checkTrain(
        env,
        db,
        tenantId,
        (result as Extract<TaskResult, { kind: "train" }>).manifest,
      );
  }
}
