/** The client API's job shapes. */
import { z } from "@hono/zod-openapi";
import {
  boundedJson,
  JOB_KINDS,
  JOB_STATUSES,
  MAX_JOB_PARAMETERS_BYTES,
  TrainParameters,
} from "@revq/shared";
import { MAX_JOB_IMAGES } from "../services/job-limits.ts";
import { NextCursor, Timestamp } from "./common.ts";

const TokenizerId = z.string().min(1).openapi({ description: "A tokenizer id or manifest hash." });
const WebhookUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .optional()
  .openapi({ description: "Also notify this URL (Standard Webhooks) when the job ends." });
const ImageIds = z
  .array(z.string().min(1))
  .min(1)
  .max(MAX_JOB_IMAGES)
  .refine((ids) => new Set(ids).size === ids.length, "image ids must not repeat")
  .openapi({ description: `Uploaded image ids, at most ${MAX_JOB_IMAGES}.` });

export const JobCreate = z
  .discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("encode"),
      tokenizer: TokenizerId,
      inputs: z.strictObject({ images: ImageIds }),
      webhookUrl: WebhookUrl,
    }),
    z.strictObject({
      kind: z.literal("reconstruct"),
      tokenizer: TokenizerId,
      inputs: z.strictObject({
        job: z
          .string()
          .min(1)
          .openapi({ description: "A succeeded encode job whose tokens to reconstruct." }),
      }),
      webhookUrl: WebhookUrl,
    }),
    z.strictObject({
      kind: z.literal("train"),
      tokenizer: TokenizerId.optional().openapi({
        description:
          "A tokenizer whose VAE to train on; the deployment's default tokenizer (DEFAULT_TOKENIZER) if absent.",
      }),
      inputs: z.union([
        z.strictObject({ images: ImageIds }),
        z.strictObject({
          dataset: z.string().min(1).openapi({
            description:
              "A dataset of this tenant (`dst_...`), frozen as it is when the job is created.",
          }),
        }),
      ]),
      // The worker's own schema: a parameter it would refuse is refused here, naming it.
      parameters: boundedJson(TrainParameters, MAX_JOB_PARAMETERS_BYTES)
        .default({})
        .openapi({
          description: `Training parameters (docs/training.md), at most ${MAX_JOB_PARAMETERS_BYTES} bytes as JSON: they are copied into every view, task and webhook of the job.`,
        }),
      webhookUrl: WebhookUrl,
    }),
  ])
  .openapi("JobCreate");
export type JobCreate = z.infer<typeof JobCreate>;

export const JobStatus = z.enum(JOB_STATUSES);
export const JobKind = z.enum(JOB_KINDS);

export const Job = z
  .object({
    id: z.string().openapi({ example: "job_01m8d0fxvcpfrrd0dgccvp9czy" }),
    kind: JobKind.openapi({
      description:
        "`extract` jobs are made by train jobs: each extracts some of the dataset's latent shards for its `parent`.",
    }),
    status: JobStatus,
    tokenizer: z.object({ id: z.string(), manifestHash: z.string() }).nullable(),
    inputs: z.record(z.string(), z.unknown()),
    webhookUrl: z.string().nullable(),
    webhookSecret: z.string().optional().openapi({
      description:
        "Signs the deliveries to webhookUrl. Only in the answer that created the job, not in an idempotent replay of it.",
    }),
    progress: z
      .object({ done: z.number(), total: z.number().optional(), stage: z.string().optional() })
      .nullable(),
    attempts: z.int(),
    result: z.record(z.string(), z.unknown()).nullable().openapi({
      description:
        "Once succeeded. encode: `tokens` (download at /v1/jobs/{id}/tokens); reconstruct: `images`, one per record, each with `index`, `bytes`, `etag` and its download `url`; extract: `shards`, the latent shards it wrote; train: `tokenizer`.",
    }),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    finishedAt: Timestamp.nullable(),
    parent: z.string().optional().openapi({ description: "An extract job's train job." }),
    extractJobs: z.array(z.string()).optional().openapi({
      description:
        "A train job's extract jobs, which other workers run while it waits; none when the dataset's latents already existed.",
    }),
  })
  .openapi("Job");

export const JobList = z
  .object({
    jobs: z.array(Job),
    nextCursor: NextCursor,
  })
  .openapi("JobList");

export const JobEvent = z
  .object({
    id: z.int().openapi({ description: "Increasing; pass the last one as `after` to continue." }),
    type: z.enum(["status", "progress", "metrics", "log"]),
    data: z.record(z.string(), z.unknown()),
    createdAt: Timestamp,
  })
  .openapi("JobEvent");
