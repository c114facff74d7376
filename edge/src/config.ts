import { LATENT_SHARD_SIZE, MAX_DATASET_IMAGES } from "@revq/shared";
import * as z from "zod";
import type { Env } from "./env.ts";
import { HttpProblem } from "./problem.ts";

/** Limits and switches, with the defaults documented in docs/api.md and wrangler.toml. */
export type Config = {
  maxImageBytes: number;
  maxImagePixels: number;
  maxUploadBytes: number;
  maxImagesPerRequest: number;
  leaseSeconds: number;
  maxLeaseWaitSeconds: number;
  taskMaxAttempts: number;
  allowLoopbackWebhooks: boolean;
  maxDecodeRecords: number;
  decodeMergeGapBytes: number;
  decodeMaxRangeReads: number;
  /** Images one request may add to a dataset: each is one R2 put, a subrequest. */
  maxDatasetAddImages: number;
  maxDatasetImages: number;
  /** Trains without a named tokenizer use this one's VAE (an id or manifest hash). */
  defaultTokenizer: string | undefined;
  latentShardSize: number;
  /** Latent shards per extract job. */
  extractTaskShards: number;
  /** How long a presigned object URL granted to a worker stays valid. */
  objectUrlSeconds: number;
};

const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const ConfigSchema = z.object({
  MAX_IMAGE_BYTES: count(20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: count(40_000_000),
  MAX_UPLOAD_BYTES: count(64 * 1024 * 1024),
  MAX_IMAGES_PER_REQUEST: count(64),
  LEASE_SECONDS: count(60),
  MAX_LEASE_WAIT_SECONDS: count(20),
  TASK_MAX_ATTEMPTS: count(5),
  ALLOW_LOOPBACK_WEBHOOKS: z.enum(["true", "false"]).default("false"),
  MAX_DECODE_RECORDS: count(256),
  DECODE_MERGE_GAP_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024),
  DECODE_MAX_RANGE_READS: count(128),
  // Workers allow 1000 subrequests per invocation; the rest is for D1 and cleaning up.
  MAX_DATASET_ADD_IMAGES: count(500).pipe(z.number().max(900)),
  // A listing holds at most MAX_DATASET_IMAGES (shared/src/protocol/dataset.ts); a deployment
  // may allow fewer, not more.
  MAX_DATASET_IMAGES: count(MAX_DATASET_IMAGES).pipe(z.number().max(MAX_DATASET_IMAGES)),
  // Empty means unset, so that a deployment can blank it out.
  DEFAULT_TOKENIZER: z
    .string()
    .trim()
    .optional()
    .transform((v) => v || undefined),
  LATENT_SHARD_SIZE: count(LATENT_SHARD_SIZE),
  EXTRACT_TASK_SHARDS: count(4),
  // Long enough to start one transfer, short enough that a leaked URL is soon useless.
  OBJECT_URL_SECONDS: count(600).pipe(z.number().max(3600)),
});

const parsed = new WeakMap<Env, Config>();

/** The checked configuration of `env`; a misconfigured deployment answers 500 with the reason. */
export function configOf(env: Env): Config {
  const cached = parsed.get(env);
  if (cached) return cached;
  const result = ConfigSchema.safeParse(env);
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new HttpProblem(500, "misconfigured", `The edge is misconfigured: ${detail}`);
  }
  const v = result.data;
  const config: Config = {
    maxImageBytes: v.MAX_IMAGE_BYTES,
    maxImagePixels: v.MAX_IMAGE_PIXELS,
    maxUploadBytes: v.MAX_UPLOAD_BYTES,
    maxImagesPerRequest: v.MAX_IMAGES_PER_REQUEST,
    leaseSeconds: v.LEASE_SECONDS,
    maxLeaseWaitSeconds: v.MAX_LEASE_WAIT_SECONDS,
    taskMaxAttempts: v.TASK_MAX_ATTEMPTS,
    allowLoopbackWebhooks: v.ALLOW_LOOPBACK_WEBHOOKS === "true",
    maxDecodeRecords: v.MAX_DECODE_RECORDS,
    decodeMergeGapBytes: v.DECODE_MERGE_GAP_BYTES,
    decodeMaxRangeReads: v.DECODE_MAX_RANGE_READS,
    maxDatasetAddImages: v.MAX_DATASET_ADD_IMAGES,
    maxDatasetImages: v.MAX_DATASET_IMAGES,
    defaultTokenizer: v.DEFAULT_TOKENIZER,
    latentShardSize: v.LATENT_SHARD_SIZE,
    extractTaskShards: v.EXTRACT_TASK_SHARDS,
    objectUrlSeconds: v.OBJECT_URL_SECONDS,
  };
  parsed.set(env, config);
  return config;
}
