/**
 * RFC 9457 problem documents: how the edge answers every failure (docs/api.md, "Errors"), and how
 * its clients (the CLI, the GPU worker) read one back.
 */
import * as z from "zod";

export const PROBLEM_MEDIA_TYPE = "application/problem+json";

/** A problem's `type` is this prefix plus its stable code. */
export const PROBLEM_TYPE_PREFIX = "urn:revq:problem:";

/**
 * Every code the edge answers with, and what it means. A FormatError of an uploaded file is
 * answered with its own `format.code` (`token-stream.bad-magic`) besides these.
 */
export const PROBLEM_CODES = {
  // The request itself
  "invalid-request": "the body, query, path or headers do not match the schema",
  "bad-request": "the body is not parseable at all (e.g. malformed JSON)",
  "invalid-multipart": "a multipart body that cannot be read",
  "invalid-tar": "a tar archive that cannot be read",
  "invalid-cursor": "a page cursor this edge did not give",
  "invalid-prefix": "a dataset prefix that is not a plain path",
  "invalid-idempotency-key": "an Idempotency-Key header that is empty or too long",
  "idempotency-key-reused": "an Idempotency-Key used before for a different request",
  "idempotency-key-in-progress": "the first request with this Idempotency-Key is still running",
  "length-required": "a body that must say its Content-Length",
  "unsupported-media-type": "a body of a media type the route does not take",
  "range-not-satisfiable": "a Range outside the object",
  "too-many-images": "more images than one request, dataset or job may have",
  "too-many-records": "more token records than one decode may have",
  "too-many-shards": "a dataset encode job cut into more shards than one job may have",
  "too-many-tokens-for-json": "a token stream too large to answer as JSON",
  "too-many-webhooks": "the tenant already has the most webhook endpoints it may have",
  "upload-too-large": "an upload above its route's limit",
  "content-too-large": "a body above its route's limit",
  "no-images": "a request that holds no image, or a job of a kind that makes none",
  "no-tokens": "a job of a kind that makes no tokens, or an upload of no records",
  "no-latents": "a job of a kind that keeps no latents (only reconstruct jobs do)",
  // Keys
  "missing-key": "no `Authorization: Bearer` header",
  "invalid-key": "an unknown or revoked key",
  "wrong-key-kind": "an api key on the worker API, or the other way round",
  "rate-limited": "too many requests of one route class in the window; see Retry-After",
  // Objects that are not there, for this tenant
  "route-not-found": "no such route",
  "tenant-not-found": "no such tenant",
  "key-not-found": "no such key",
  "image-not-found": "no such image",
  "dataset-not-found": "no such dataset",
  "job-not-found": "no such job",
  "task-not-found": "no such task",
  "tokenizer-not-found": "no such tokenizer",
  "tokens-not-found": "no such uploaded tokens",
  "webhook-not-found": "no such webhook endpoint",
  "delivery-not-found": "no such webhook delivery",
  "object-missing": "an object the request needs is not in the bucket",
  "no-shards": "a job that is not a dataset encode job, which alone has token shards",
  "shard-not-found": "a shard index outside the job's shards",
  // Well-formed, but it does not fit
  "dataset-empty": "a dataset with no images",
  "dataset-full": "a dataset that holds the most images it may",
  "dataset-too-large": "a dataset above MAX_DATASET_IMAGES",
  "dataset-too-small": "a dataset with fewer images than one training batch",
  "dataset-changed": "a dataset changed while a job froze its listing",
  "dataset-not-upload": "a prefix dataset, which takes no uploads",
  "image-already-in-dataset": "an image the dataset already holds",
  "tokenizer-required": "a job that names no tokenizer where the edge has no default",
  "tokenizer-not-ready": "a tokenizer whose files are not all uploaded yet",
  "tokenizer-not-owned": "a public tokenizer: a tenant renames and deletes only its own",
  "tokenizer-name-taken": "a name another of the tenant's tokenizers has",
  "tokenizer-codebook-invalid": "a tokenizer's codebook that does not fit its manifest",
  "file-not-in-manifest": "a tokenizer file its manifest does not name",
  "file-size-mismatch": "a tokenizer file of another size than its manifest says",
  "file-hash-mismatch": "a tokenizer file of other bytes than its manifest says",
  "tokens-not-available": "a job that made no tokens (yet)",
  "tokens-not-ready": "a job whose tokens exist once it has succeeded",
  "format-not-for-dataset":
    "a dataset encode job's whole tokens asked for as JSON or .npy, or to decode or reconstruct: its shards offer these",
  "images-not-ready": "a job whose images exist once it has succeeded",
  "latents-not-ready": "a job whose latents exist once it has succeeded",
  "latents-not-kept": "a reconstruct job that was not asked for its latents",
  "job-finished": "a job that has already ended",
  "webhook-target-forbidden": "a webhook URL on a private, loopback or unresolvable address",
  // Workers
  "lease-lost": "the task's lease expired or another worker holds it",
  "job-cancelled": "the task's job was cancelled",
  "invalid-result": "a worker's result that does not fit its task",
  "object-not-granted": "a bucket object the task may not read or write",
  // The deployment
  internal: "a bug; details are in the Worker's log, not in the answer",
  misconfigured: "a setting of the deployment is invalid or missing; `detail` says which",
  "admin-key-not-configured": "the admin API is off because ADMIN_KEY is not set",
  "webhook-keys-not-configured": "registering webhooks is off because WEBHOOK_KEYS is not set",
  "bucket-urls-not-configured": "workers get no object URLs because the S3_* settings are not set",
} as const;
/** A code of PROBLEM_CODES, or a FormatError's `format.code`. */
export type ProblemCode = keyof typeof PROBLEM_CODES | `${string}.${string}`;

/** What a client relies on in a problem; an edge may send more. */
const ProblemAnswer = z.looseObject({
  code: z.string(),
  detail: z.string().optional(),
  status: z.number().optional(),
  title: z.string().optional(),
});
export type ProblemAnswer = z.infer<typeof ProblemAnswer>;

/** The problem in an answer's body, or undefined when it is none (a proxy's error page, say). */
export function readProblem(text: string): ProblemAnswer | undefined {
  try {
    const parsed = ProblemAnswer.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
