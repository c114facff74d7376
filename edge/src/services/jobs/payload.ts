/**
 * The task payload of a new job: every key and parameter its worker needs, from the references
 * the request names. A train job freezes its dataset's listing here, and gets extract jobs for
 * the latent shards not extracted yet.
 */
import { bucketKeys, type JobCreate, type TaskPayload } from "@revq/shared";
import type { Config } from "../../config.ts";
import type { Db } from "../../db/client.ts";
import { resultOf } from "../../db/job-results.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";

import { extractGroups, freezeDataset, missingShards } from "../dataset-listing.ts";
import { manifestOf, type TokenizerRow } from "../tokenizers.ts";
import { findJob } from "./read.ts";
import {
  baseTokenizer,
  imageInputs,
  readyTokenizer,
  tokenizerRef,
  trainingEntries,
} from "./references.ts";

export type ExtractPayload = Extract<TaskPayload, { kind: "extract" }>;

/**
 * The payload of the new job's task (every key and parameter the worker needs) and, for a train
 * job, those of the extract jobs that go with it.
 */
export async function taskPayload(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  jobId: string,
  body: JobCreate,
): Promise<{ tokenizer: TokenizerRow; payload: TaskPayload; extract: ExtractPayload[] }> {
  switch (body.kind) {
    case "encode": {
      const tokenizer = await readyTokenizer(db, tenantId, body.tokenizer);
      const payload: TaskPayload = {
        kind: "encode",
        tokenizer: tokenizerRef(tokenizer),
        images: await imageInputs(db, tenantId, body.inputs.images),
        output: { tokens: bucketKeys.jobTokens(tenantId, jobId) },
      };
      return { tokenizer, payload, extract: [] };
    }
    case "reconstruct": {
      const tokenizer = await readyTokenizer(db, tenantId, body.tokenizer);
      const source = await findJob(db, tenantId, body.inputs.job).catch((error) => {
        if (error instanceof HttpProblem) {
          throw new HttpProblem(
            422,
            "job-not-found",
            `No job ${body.inputs.job} to take tokens from.`,
          );
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
      const { tokens } = encoded;
      if (tokens.tokenizerHash !== tokenizer.manifestHash) {
        throw new HttpProblem(
          422,
          "token-stream.bad-tokenizer-hash",
          `Job ${source.id}'s tokens were made by tokenizer ${tokens.tokenizerHash}, not ${tokenizer.manifestHash}.`,
        );
      }
      const payload: TaskPayload = {
        kind: "reconstruct",
        tokenizer: tokenizerRef(tokenizer),
        input: {
          tokens: bucketKeys.jobTokens(tenantId, source.id),
          recordCount: tokens.recordCount,
        },
        output: {
          images: Array.from({ length: tokens.recordCount }, (_, i) =>
            bucketKeys.jobImage(tenantId, jobId, i),
          ),
        },
      };
      return { tokenizer, payload, extract: [] };
    }
    case "train": {
      const tokenizer = await readyTokenizer(
        db,
        tenantId,
        baseTokenizer(config, body.baseTokenizer),
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
      const extract = groups.map(
        (shards): ExtractPayload => ({ kind: "extract", vae: base, dataset, shards }),
      );
      return { tokenizer, payload, extract };
    }
  }
}
