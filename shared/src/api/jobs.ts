/** The client API's job shapes (api/common.ts says how they are used). */
import * as z from "zod";
import {
  MAX_DATASET_IMAGES,
  MAX_TOKEN_SHARD_SIZE,
  MIN_TOKEN_SHARD_SIZE,
  TOKEN_SHARD_SIZE,
} from "../protocol/dataset.ts";
import { boundedJson, MAX_JOB_PARAMETERS_BYTES } from "../protocol/json-limits.ts";
import { TokenizerEvaluation } from "../protocol/tokenizer-evaluation.ts";
import { TrainParameters } from "../protocol/train-parameters.ts";
import { JobKind, JobStatus } from "../protocol/vocabulary.ts";
import { Progress } from "../protocol/worker-api.ts";
import { NextCursor, Timestamp } from "./common.ts";

/** Images one job may name inline: its task payload is one D1 row (at most 2 MB). */
export const MAX_JOB_IMAGES = 2000;

const TokenizerRef = z.object({ id: z.string(), manifestHash: z.string() });
const TokenizerId = z
  .string()
  .min(1)
  .meta({ description: "A tokenizer: its id, manifest hash or name." });
/** Encode and reconstruct jobs that name none use the tenant's default, else the deployment's. */
const JobTokenizer = TokenizerId.optional().meta({
  description:
    "A tokenizer: its id, manifest hash or name; if absent, the tenant's default tokenizer, else the deployment's (DEFAULT_TOKENIZER).",
});
const WebhookUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .optional()
  .meta({ description: "Also notify this URL (Standard Webhooks) when the job ends." });
const ImageIds = z
  .array(z.string().min(1))
  .min(1)
  .max(MAX_JOB_IMAGES)
  .refine((ids) => new Set(ids).size === ids.length, "image ids must not repeat")
  .meta({ description: `Uploaded image ids, at most ${MAX_JOB_IMAGES}.` });

/** What each kind of job works on: `inputs`, one level, in the request and in the job. */
const ImagesInput = z.strictObject({ images: ImageIds });
const SourceJobInput = z.strictObject({
  job: z
    .string()
    .min(1)
    .meta({ description: "A succeeded encode job whose tokens to reconstruct." }),
});
const UploadedTokensInput = z.strictObject({
  tokens: z
    .string()
    .min(1)
    .meta({ description: "Tokens uploaded with POST /v1/tokens (`tks_...`) to reconstruct." }),
});
const DatasetInput = z.strictObject({
  dataset: z.string().min(1).meta({
    description: "A dataset of this tenant (`dst_...`), frozen as it is when the job is created.",
  }),
});
/** An encode job's dataset, cut into token shards that workers encode in parallel. */
const EncodeDatasetInput = z.strictObject({
  dataset: z
    .string()
    .min(1)
    .meta({
      description: `A dataset of this tenant (\`dst_...\`, at most ${MAX_DATASET_IMAGES} images), frozen as it is when the job is created.`,
    }),
  shardSize: z
    .int()
    .min(MIN_TOKEN_SHARD_SIZE)
    .max(MAX_TOKEN_SHARD_SIZE)
    .default(TOKEN_SHARD_SIZE)
    .meta({
      description: `Images per token shard (${MIN_TOKEN_SHARD_SIZE} to ${MAX_TOKEN_SHARD_SIZE}): one shard job each. The same dataset listing, tokenizer and shard size reuse the shards already made.`,
    }),
});
const ShardsInput = z.strictObject({
  shards: z.array(z.int().min(0)).meta({
    description:
      "The parent's dataset shards it works on: an extract job's latent shards, a shard job's one token shard.",
  }),
});

export const JobCreate = z
  .discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("encode"),
      tokenizer: JobTokenizer,
      inputs: z.union([ImagesInput, EncodeDatasetInput]),
      webhookUrl: WebhookUrl,
    }),
    z.strictObject({
      kind: z.literal("reconstruct"),
      tokenizer: JobTokenizer,
      inputs: z.union([SourceJobInput, UploadedTokensInput]),
      latents: z.boolean().default(false).meta({
        description:
          "Also keep the VAE latents the images are decoded from (after the rectifier, de-normalised): one float32 `.npy` of shape (N, C, H, W), at `result.latents.url`.",
      }),
      webhookUrl: WebhookUrl,
    }),
    z.strictObject({
      kind: z.literal("train"),
      // Not `tokenizer`: a train job's `tokenizer` is the one it makes.
      baseTokenizer: TokenizerId.optional().meta({
        description:
          "The tokenizer whose VAE to train on; if absent, the tenant's default tokenizer, else the deployment's (DEFAULT_TOKENIZER).",
      }),
      inputs: z.union([ImagesInput, DatasetInput]),
      // The worker's own schema: a parameter it would refuse is refused here, naming it.
      parameters: boundedJson(TrainParameters, MAX_JOB_PARAMETERS_BYTES)
        .default({})
        .meta({
          description: `Training parameters (docs/training.md), at most ${MAX_JOB_PARAMETERS_BYTES} bytes as JSON: they are copied into every view, task and webhook of the job.`,
        }),
      webhookUrl: WebhookUrl,
    }),
  ])
  .meta({ id: "JobCreate" });
export type JobCreate = z.infer<typeof JobCreate>;

export const Job = z
  .object({
    id: z.string().meta({ example: "job_01m8d0fxvcpfrrd0dgccvp9czy" }),
    kind: JobKind.meta({
      description:
        "`extract` jobs are made by train jobs: each extracts some of the dataset's latent shards for its `parent`.",
    }),
    status: JobStatus,
    tokenizer: TokenizerRef.nullable().meta({
      description:
        "The tokenizer of the job's tokens: the one an encode, reconstruct or extract job works with; the one a train job made, null until it succeeds.",
    }),
    baseTokenizer: TokenizerRef.optional().meta({
      description:
        "A train job's: the tokenizer whose VAE it trains on (the request's `baseTokenizer`, else the deployment's default).",
    }),
    evaluation: TokenizerEvaluation.optional().meta({
      description:
        "A train job's: its tokenizer's figures on the held-out set (docs/training.md, Evaluation), once it succeeded, or when it failed because they missed the job's `parameters.require` (error `evaluation-below-threshold`; no tokenizer was registered).",
    }),
    inputs: z
      .union([
        ImagesInput,
        SourceJobInput,
        UploadedTokensInput,
        DatasetInput,
        EncodeDatasetInput,
        ShardsInput,
      ])
      .meta({
        description:
          "What the job works on, as the request named it: encode `images`, or `dataset` and `shardSize`; reconstruct `job` or `tokens`; train `images` or `dataset`; extract and shard jobs `shards`.",
      }),
    parameters: TrainParameters.optional().meta({
      description: "A train job's parameters, as accepted.",
    }),
    webhookUrl: z.string().nullable(),
    webhookSecret: z.string().optional().meta({
      description:
        "Signs the deliveries to webhookUrl. Only in the answer that created the job, not in an idempotent replay of it.",
    }),
    progress: Progress.nullable().meta({
      description:
        "The latest a worker reported; kept when the job ends (how far it got), cleared when it is queued again.",
    }),
    attempts: z.int(),
    result: z.record(z.string(), z.unknown()).nullable().meta({
      description:
        "Once succeeded. encode: `tokens` (download at /v1/jobs/{id}/tokens), and for a dataset `shards` and `dataset` (GET /v1/jobs/{id}/shards); reconstruct: `images`, one per record, each with `index`, `bytes`, `etag` and its download `url`, and if asked `latents` (`bytes`, `etag`, `url`); extract: `shards`, the latent shards it wrote. A train job's result is its `tokenizer`, so this stays null.",
    }),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    finishedAt: Timestamp.nullable(),
    parent: z
      .string()
      .optional()
      .meta({ description: "An extract job's train job; a shard job's dataset encode job." }),
    extractJobs: z.array(z.string()).optional().meta({
      description:
        "A train job's extract jobs, which other workers run while it waits; none when the dataset's latents already existed.",
    }),
    shardJobs: z.array(z.string()).optional().meta({
      description:
        "A dataset encode job's shard jobs, one per token shard not made before (encode jobs whose `parent` it is), in shard order.",
    }),
  })
  .meta({ id: "Job" });
export type Job = z.infer<typeof Job>;

export const JobList = z
  .object({
    jobs: z.array(Job),
    nextCursor: NextCursor,
  })
  .meta({ id: "JobList" });

export const JobEvent = z
  .object({
    id: z.int().meta({ description: "Increasing; pass the last one as `after` to continue." }),
    type: z.enum(["status", "progress", "metrics", "log"]),
    data: z.record(z.string(), z.unknown()),
    createdAt: Timestamp,
  })
  .meta({ id: "JobEvent" });
export type JobEvent = z.infer<typeof JobEvent>;

/** A page of a job's events, oldest first; `next` is the last id, to pass as `after`. */
export const EventPage = z.object({ events: z.array(JobEvent), next: z.int().nullable() });

/** One token shard of a dataset encode job: records firstRecord .. firstRecord + records − 1. */
export const TokenShard = z
  .object({
    index: z.int().min(0),
    firstRecord: z.int().min(0),
    records: z.int().min(1),
    bytes: z.int().min(1).meta({ description: "The shard's token stream, in bytes." }),
    etag: z.string().meta({ description: "Its strong ETag (that of its download)." }),
  })
  .meta({ id: "TokenShard" });
export type TokenShard = z.infer<typeof TokenShard>;

/**
 * A dataset encode job's shards (GET /v1/jobs/{id}/shards): each a token stream of its own
 * (docs/token-stream.md), whose record r is the job's record firstRecord + r.
 */
export const TokenShardManifest = z
  .object({
    format: z.literal("revq.token-shards/v1"),
    job: z.string(),
    tokenizerHash: z.string(),
    dataset: z.string().meta({ description: "The dataset the job froze." }),
    listingHash: z.string().meta({ description: "The SHA-256 of its frozen listing." }),
    recordCount: z.int().min(1),
    shardSize: z.int().min(1),
    tokensPerRecord: z.int().min(1),
    codesPerGroup: z.int().min(2),
    groups: z.int().min(1),
    bitsPerToken: z.int().min(1),
    shards: z.array(TokenShard),
  })
  .meta({ id: "TokenShardManifest" });
export type TokenShardManifest = z.infer<typeof TokenShardManifest>;

/** Which image each record of a dataset encode job is (GET /v1/jobs/{id}/records). */
export const RecordIndex = z
  .object({
    format: z.literal("revq.record-index/v1"),
    job: z.string(),
    dataset: z.string(),
    records: z.array(
      z.object({
        record: z.int().min(0),
        shard: z.int().min(0),
        /** An upload dataset's image. */
        imageId: z.string().optional(),
        /** A prefix dataset's file, its path under the tenant's files. */
        file: z.string().optional(),
      }),
    ),
  })
  .meta({ id: "RecordIndex" });
export type RecordIndex = z.infer<typeof RecordIndex>;
