/**
 * The task payload of a new job: every key and parameter its worker needs, from the references
 * the request names. A train job freezes its dataset's listing here, and gets extract jobs for
 * the latent shards not extracted yet; a dataset encode job freezes its dataset too, and gets a
 * shard job for each token shard not made yet, but no task of its own (dataset-encode.ts).
 */
import { bucketKeys, type JobCreate, type TaskPayload } from "@revq/shared";
import type { Config } from "../../config.ts";
import type { Db } from "../../db/client.ts";
import { resultOf } from "../../db/job-results.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";

import { extractGroups, freezeDataset, missingShards } from "../dataset-listing.ts";
import { findUploadedTokens } from "../token-uploads.ts";
import { manifestOf, type TokenizerRow } from "../tokenizers.ts";
import {
  type FrozenDataset,
  isDatasetResult,
  planDatasetEncode,
  shardPayload,
} from "./dataset-encode.ts";
import { findJob } from "./read.ts";
import { imageInputs, jobTokenizer, tokenizerRef, trainingEntries } from "./references.ts";
import { notOneStream } from "./token-download.ts";

export type ExtractPayload = Extract<TaskPayload, { kind: "extract" }>;

/** A job made with the new one (an extract or shard job): its task and the shards it works on. */
export type ChildJob = { payload: TaskPayload; shards: number[] };

/** What a new job needs written: its task's payload (none for a dataset encode job), its children. */
export type JobPlan = {
  tokenizer: TokenizerRow;
  payload: TaskPayload | null;
  children: ChildJob[];
  frozen?: FrozenDataset;
};

/**
 * The payload of the new job's task (every key and parameter the worker needs) and those of the
 * child jobs that go with it: a train job's extract jobs, a dataset encode job's shard jobs.
 */
export async function taskPayload(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  jobId: string,
  body: JobCreate,
): Promise<JobPlan> {
  switch (body.kind) {
    case "encode": {
      const tokenizer = await jobTokenizer(db, config, tenantId, body.tokenizer, "tokenizer");
      if ("dataset" in body.inputs) {
        const plan = await planDatasetEncode(env, db, config, tenantId, tokenizer, body.inputs);
        const children = plan.missing.map((index) => ({
          payload: shardPayload(plan.frozen, index, tokenizer),
          shards: [index],
        }));
        return { tokenizer, payload: null, children, frozen: plan.frozen };
      }
      const payload: TaskPayload = {
        kind: "encode",
        tokenizer: tokenizerRef(tokenizer),
        images: await imageInputs(db, tenantId, body.inputs.images),
        output: { tokens: bucketKeys.jobTokens(tenantId, jobId) },
      };
      return { tokenizer, payload, children: [] };
    }
    case "reconstruct": {
      const tokenizer = await jobTokenizer(db, config, tenantId, body.tokenizer, "tokenizer");
      const source =
        "job" in body.inputs
          ? await encodedTokens(db, tenantId, body.inputs.job)
          : await uploadedTokens(env.BUCKET, tenantId, body.inputs.tokens);
      if (source.tokenizerHash !== tokenizer.manifestHash) {
        throw new HttpProblem(
          422,
          "token-stream.bad-tokenizer-hash",
          `${source.what}'s tokens were made by tokenizer ${source.tokenizerHash}, not ${tokenizer.manifestHash}.`,
        );
      }
      const payload: TaskPayload = {
        kind: "reconstruct",
        tokenizer: tokenizerRef(tokenizer),
        input: { tokens: source.key, recordCount: source.recordCount },
        output: {
          images: Array.from({ length: source.recordCount }, (_, i) =>
            bucketKeys.jobImage(tenantId, jobId, i),
          ),
          ...(body.latents ? { latents: bucketKeys.jobLatents(tenantId, jobId) } : {}),
        },
      };
      return { tokenizer, payload, children: [] };
    }
    case "train": {
      const tokenizer = await jobTokenizer(
        db,
        config,
        tenantId,
        body.baseTokenizer,
        "baseTokenizer",
      );
      const base = tokenizerRef(tokenizer);
      const entries = await trainingEntries(env, db, config, tenantId, body.inputs);
      const dataset = await freezeDataset(
        env.BUCKET,
        tenantId,
        entries,
        manifestOf(tokenizer).vae,
        config,
      );
      const payload: TaskPayload = {
        kind: "train",
        base,
        dataset,
        parameters: body.parameters,
        output: { checkpoints: bucketKeys.jobCheckpoints(tenantId, jobId) },
      };
      // Shards an earlier job extracted under the same VAE are reused, never made again.
      const groups = extractGroups(
        await missingShards(env.BUCKET, dataset),
        config.extractTaskShards,
      );
      const children = groups.map((shards) => ({
        payload: { kind: "extract", vae: base, dataset, shards } satisfies ExtractPayload,
        shards,
      }));
      return { tokenizer, payload, children };
    }
  }
}

/** Tokens a reconstruct job reads: where they are, how many records, which tokenizer made them. */
type TokensToReconstruct = {
  what: string;
  key: string;
  recordCount: number;
  tokenizerHash: string;
};

/** A succeeded encode job's tokens (422 when the job has none). */
async function encodedTokens(
  db: Db,
  tenantId: string,
  jobId: string,
): Promise<TokensToReconstruct> {
  const source = await findJob(db, tenantId, jobId).catch((error) => {
    if (error instanceof HttpProblem) {
      throw new HttpProblem(422, "job-not-found", `No job ${jobId} to take tokens from.`);
    }
    throw error;
  });
  const encoded = resultOf(source, "encode");
  if (source.status !== "succeeded" || encoded === null) {
    throw new HttpProblem(
      422,
      "tokens-not-available",
      `Job ${source.id} is a ${source.status} ${source.kind} job; reconstruct needs a succeeded encode job.`,
    );
  }
  if (isDatasetResult(encoded)) throw notOneStream(source, "reconstructed whole");
  return {
    what: `Job ${source.id}`,
    key: bucketKeys.jobTokens(tenantId, source.id),
    recordCount: encoded.tokens.recordCount,
    tokenizerHash: encoded.tokens.tokenizerHash,
  };
}

/** Tokens the tenant uploaded (POST /v1/tokens; 422 when there are none of that id). */
async function uploadedTokens(
  bucket: R2Bucket,
  tenantId: string,
  tokensId: string,
): Promise<TokensToReconstruct> {
  const uploaded = await findUploadedTokens(bucket, tenantId, tokensId).catch((error) => {
    if (error instanceof HttpProblem) {
      throw new HttpProblem(
        422,
        "tokens-not-found",
        `No uploaded tokens ${tokensId} to reconstruct.`,
      );
    }
    throw error;
  });
  return {
    what: `Upload ${uploaded.id}`,
    key: bucketKeys.uploadedTokens(tenantId, uploaded.id),
    recordCount: uploaded.recordCount,
    tokenizerHash: uploaded.tokenizer.manifestHash,
  };
}
