/**
 * The wire protocol between the edge and GPU workers (`/v1/worker/...`), as zod schemas: the
 * edge validates requests and the worker validates answers with the same definitions.
 *
 * A worker leases tasks, renews each lease by heartbeat (which also reports progress and
 * metrics, and says whether the job was cancelled), and ends it with complete or fail, or with
 * release when it shuts down. A lease that is not renewed expires and the task goes back to the
 * queue. Every call after the lease
 * names its `leaseId`; a holder whose lease was lost is refused (409), so two workers can never
 * both finish one task. A task payload carries everything the worker needs: the bucket keys to
 * read and write (see bucket-keys.ts), the tokenizer and its manifest hash, and the parameters.
 * The worker holds no bucket credential: it asks the edge for a short-lived presigned URL per
 * object (`objects`), and the edge grants only the objects the task's payload names.
 */
import * as z from "zod";
import { boundedJson, MAX_MANIFEST_BYTES, MAX_METRICS_BYTES } from "./json-limits.ts";
import { TokenizerEvaluation } from "./tokenizer-evaluation.ts";
import { JOB_KINDS } from "./vocabulary.ts";

/** A task is of its job's kind. */
export const TaskKind = z.enum(JOB_KINDS);
export type TaskKind = z.infer<typeof TaskKind>;

/** Most tasks one lease call may take. */
export const MAX_TASKS_PER_LEASE = 16;
/** Longest long-poll a worker may ask for; the edge may cap it lower (MAX_LEASE_WAIT_SECONDS). */
export const MAX_LEASE_WAIT_SECONDS = 60;
/** Most objects one `objects` call may ask for (each hash it names is one bound D1 parameter). */
export const MAX_OBJECTS_PER_GRANT = 64;

const BucketKey = z.string().min(1).max(1024);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");
const Timestamp = z.iso.datetime();

/** The tokenizer a task uses: its manifest and files are in the bucket under these keys. */
export const TokenizerRef = z.object({
  id: z.string(),
  manifestHash: Sha256,
  /** tokenizers/{hash}/manifest.json: the canonical manifest, whose SHA-256 is manifestHash. */
  manifestKey: BucketKey,
  /** tokenizers/{hash}/files/: prefix of the files, each at prefix + its manifest path. */
  filesPrefix: BucketKey,
});
export type TokenizerRef = z.infer<typeof TokenizerRef>;

export const ImageInput = z.object({
  imageId: z.string(),
  bucketKey: BucketKey,
  format: z.enum(["png", "jpeg", "webp"]),
  width: z.int().positive(),
  height: z.int().positive(),
});
export type ImageInput = z.infer<typeof ImageInput>;

/**
 * One shard of a frozen dataset listing (dataset.ts): its images index·shardSize onwards, at most
 * shardSize of them. The worker reads the listing, checked against listingHash and count.
 */
export const DatasetShard = z.object({
  listing: BucketKey,
  listingHash: Sha256,
  count: z.int().min(1),
  shardSize: z.int().min(1),
  index: z.int().min(0),
});
export type DatasetShard = z.infer<typeof DatasetShard>;

/**
 * Images → one token stream (docs/token-stream.md), record i for image i: the images named, or
 * (with `images` empty) those of one dataset shard, for a dataset encode job's shard job.
 */
export const EncodePayload = z
  .object({
    kind: z.literal("encode"),
    tokenizer: TokenizerRef,
    images: z.array(ImageInput),
    shard: DatasetShard.optional(),
    output: z.object({ tokens: BucketKey }),
  })
  .refine((payload) => payload.images.length > 0 !== (payload.shard !== undefined), {
    message: "an encode task names either images or one dataset shard",
  });

/**
 * A token stream → one PNG per record, output.images[i] for record i, and with output.latents
 * the latents those were decoded from (rectified, de-normalised) as one float32 .npy (N, C, H, W).
 */
export const ReconstructPayload = z.object({
  kind: z.literal("reconstruct"),
  tokenizer: TokenizerRef,
  input: z.object({ tokens: BucketKey, recordCount: z.int().min(1) }),
  output: z.object({ images: z.array(BucketKey).min(1), latents: BucketKey.optional() }),
});

/**
 * A frozen training set (dataset.ts): its listing in the bucket, checked against listingHash, and
 * where its latents under the task's VAE go, shard i (images i·shardSize onwards) at
 * `latents` + latentShardName(i). Shards are shared: every task on the same listing and VAE reads
 * and writes the same ones.
 */
export const DatasetRef = z.object({
  listing: BucketKey,
  listingHash: Sha256,
  count: z.int().min(1),
  latents: BucketKey,
  shardSize: z.int().min(1),
});
export type DatasetRef = z.infer<typeof DatasetRef>;

/**
 * Images → latents: the listed shards of the dataset encoded with `vae`'s VAE (a tokenizer whose
 * VAE it is). A shard already in the bucket is kept, so a re-leased task does only what is missing.
 */
export const ExtractPayload = z.object({
  kind: z.literal("extract"),
  vae: TokenizerRef,
  dataset: DatasetRef,
  shards: z.array(z.int().min(0)).min(1),
});

/**
 * A dataset → a new tokenizer trained on `base`'s VAE. Latent shards other tasks have written are
 * reused and missing ones extracted. Checkpoints go under output.checkpoints (a prefix) so that a
 * re-leased task resumes; the new tokenizer's files go to tokenizers/{hash}/files/ and its
 * manifest is sent with complete.
 */
export const TrainPayload = z.object({
  kind: z.literal("train"),
  base: TokenizerRef,
  dataset: DatasetRef,
  parameters: z.record(z.string(), z.unknown()),
  output: z.object({ checkpoints: BucketKey }),
});

export const TaskPayload = z.discriminatedUnion("kind", [
  EncodePayload,
  ReconstructPayload,
  ExtractPayload,
  TrainPayload,
]);
export type TaskPayload = z.infer<typeof TaskPayload>;

export const LeaseRequest = z.object({
  kinds: z
    .array(TaskKind)
    .min(1)
    .default([...JOB_KINDS]),
  max: z.int().min(1).max(MAX_TASKS_PER_LEASE).default(1),
  /** Seconds to wait for a task when none is ready (long-poll); 0 answers at once. */
  waitSeconds: z.number().min(0).max(MAX_LEASE_WAIT_SECONDS).default(0),
  /** A name for this worker, recorded in job events. */
  worker: z.string().min(1).max(200).optional(),
});
export type LeaseRequest = z.infer<typeof LeaseRequest>;

/** A presigned request: send it as given (method, URL and every header), before `expiresAt`. */
export const GrantedObject = z.object({
  method: z.enum(["GET", "PUT"]),
  key: BucketKey,
  url: z.url(),
  headers: z.record(z.string(), z.string()),
  expiresAt: Timestamp,
});
export type GrantedObject = z.infer<typeof GrantedObject>;

export const LeasedTask = z.object({
  taskId: z.string(),
  jobId: z.string(),
  kind: TaskKind,
  /** 1 for the first lease of this task, 2 after one retry or expired lease, ... (not after a release) */
  attempt: z.int().min(1),
  maxAttempts: z.int().min(1),
  leaseId: z.string(),
  leaseExpiresAt: Timestamp,
  payload: TaskPayload,
  /**
   * GET URLs for the inputs the task reads first (its images, its token stream, its dataset's
   * listing; at most MAX_OBJECTS_PER_GRANT), granted with the lease to save a call: use each once,
   * then ask `POST /tasks/{id}/objects` as for any other object.
   */
  objects: z.array(GrantedObject).max(MAX_OBJECTS_PER_GRANT).default([]),
});
export type LeasedTask = z.infer<typeof LeasedTask>;

export const LeaseResponse = z.object({
  tasks: z.array(LeasedTask),
  /** Renew each lease well within this (every third of it, say). */
  leaseSeconds: z.int().positive(),
});
export type LeaseResponse = z.infer<typeof LeaseResponse>;

export const Progress = z.object({
  done: z.number().min(0),
  total: z.number().positive().optional(),
  stage: z.string().min(1).max(100).optional(),
  /** Seconds the task should still take at its pace so far (a train task's, once it trains). */
  etaSeconds: z.number().min(0).optional(),
});
export type Progress = z.infer<typeof Progress>;

/** Numbers by name (loss, usage, images/s...), stored as a job event. */
const Metrics = boundedJson(z.record(z.string().min(1).max(100), z.number()), MAX_METRICS_BYTES);

export const HeartbeatRequest = z.object({
  leaseId: z.string(),
  progress: Progress.optional(),
  metrics: Metrics.optional(),
  message: z.string().max(2000).optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

export const HeartbeatResponse = z.object({
  /** The job was cancelled: stop, and do not complete. The lease is gone. */
  cancelled: z.boolean(),
  /** The renewed expiry; null when cancelled. */
  leaseExpiresAt: Timestamp.nullable(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

/** What a finished task reports; the edge checks the outputs named in the payload itself. */
export const TaskResult = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("encode") }),
  z.object({ kind: z.literal("reconstruct") }),
  z.object({ kind: z.literal("extract") }),
  z.object({
    kind: z.literal("train"),
    /** The new tokenizer's manifest; its files must already be in the bucket. */
    manifest: boundedJson(z.record(z.string(), z.unknown()), MAX_MANIFEST_BYTES),
  }),
]);
export type TaskResult = z.infer<typeof TaskResult>;

export const CompleteRequest = z.object({
  leaseId: z.string(),
  result: TaskResult,
  metrics: Metrics.optional(),
});
export type CompleteRequest = z.infer<typeof CompleteRequest>;

export const CompleteResponse = z.object({
  taskId: z.string(),
  jobId: z.string(),
  status: z.literal("succeeded"),
});
export type CompleteResponse = z.infer<typeof CompleteResponse>;

export const FailRequest = z.object({
  leaseId: z.string(),
  /** true: worth another attempt (out of memory, lost connection); false: it will never work. */
  retryable: z.boolean(),
  error: z.object({
    code: z.string().min(1).max(100),
    message: z.string().min(1).max(2000),
    /** A train task's, failed because its tokenizer missed the job's thresholds. */
    evaluation: TokenizerEvaluation.optional(),
  }),
});
export type FailRequest = z.infer<typeof FailRequest>;

export const FailResponse = z.object({
  taskId: z.string(),
  jobId: z.string(),
  /** queued: it will be leased again after retryAt; failed: no more attempts. */
  status: z.enum(["queued", "failed"]),
  attempt: z.int().min(1),
  retryAt: Timestamp.nullable(),
});
export type FailResponse = z.infer<typeof FailResponse>;

/**
 * Hands a held task back unfinished, for a worker that is shutting down: the task is queued
 * again at once (no backoff) and this lease does not count as an attempt. Not a failure, so it
 * carries no error; a task that cannot be done is failed instead.
 */
export const ReleaseRequest = z.object({ leaseId: z.string() });
export type ReleaseRequest = z.infer<typeof ReleaseRequest>;

export const ReleaseResponse = z.object({
  taskId: z.string(),
  jobId: z.string(),
  status: z.literal("queued"),
});
export type ReleaseResponse = z.infer<typeof ReleaseResponse>;

/**
 * One object a task needs: read (GET) or write (PUT). A write names the SHA-256 of the bytes it
 * will send; the URL is signed for that checksum, so the bucket refuses any other body.
 */
export const ObjectRequest = z.discriminatedUnion("method", [
  z.object({ method: z.literal("GET"), key: BucketKey }),
  z.object({ method: z.literal("PUT"), key: BucketKey, sha256: Sha256 }),
]);
export type ObjectRequest = z.infer<typeof ObjectRequest>;

export const ObjectsRequest = z.object({
  leaseId: z.string(),
  objects: z.array(ObjectRequest).min(1).max(MAX_OBJECTS_PER_GRANT),
});
export type ObjectsRequest = z.infer<typeof ObjectsRequest>;

/** The granted objects, in the order asked for. */
export const ObjectsResponse = z.object({ objects: z.array(GrantedObject) });
export type ObjectsResponse = z.infer<typeof ObjectsResponse>;
