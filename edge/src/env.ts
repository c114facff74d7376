/**
 * The bindings and variables the edge Worker gets from wrangler.toml (and, for secrets, from
 * `wrangler secret put` in production or `.dev.vars` locally). Variables arrive as strings;
 * config.ts turns them into checked numbers and flags. Written by hand to say what each is for and
 * which may be left out; tests/e2e/env-declaration.test.ts checks it against `wrangler types`.
 */
export type Env = {
  DB: D1Database;
  BUCKET: R2Bucket;
  WEBHOOKS: Queue<unknown>;
  /**
   * Requests per tenant and period on each expensive route class ([[ratelimits]]); optional so
   * that a deployment without them gets a clear 500 (middleware/rate-limit.ts).
   */
  RATE_LIMIT_IMAGES?: RateLimit;
  RATE_LIMIT_DATASET_UPLOADS?: RateLimit;
  RATE_LIMIT_JOBS?: RateLimit;
  RATE_LIMIT_DECODE?: RateLimit;
  /** The admin key (a secret): creates tenants and keys. */
  ADMIN_KEY?: string;
  /**
   * The keys that encrypt webhook signing secrets in D1 (a secret): `id:base64key,...`, the first
   * current (services/webhooks/secret.ts).
   */
  WEBHOOK_KEYS?: string;
  /**
   * The bucket's S3 API, for the presigned URLs workers get (services/objects/presign.ts): the endpoint
   * (an absolute URL, or a path on the edge's own origin such as wrangler dev's
   * `/cdn-cgi/local/r2/s3`), the bucket's name and region, and an access key (a secret).
   */
  S3_ENDPOINT?: string;
  S3_BUCKET?: string;
  S3_REGION?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  OBJECT_URL_SECONDS?: string;
  MAX_IMAGE_BYTES?: string;
  MAX_IMAGE_PIXELS?: string;
  MAX_UPLOAD_BYTES?: string;
  MAX_IMAGES_PER_REQUEST?: string;
  LEASE_SECONDS?: string;
  MAX_LEASE_WAIT_SECONDS?: string;
  TASK_MAX_ATTEMPTS?: string;
  ALLOW_LOOPBACK_WEBHOOKS?: string;
  MAX_DECODE_RECORDS?: string;
  DECODE_MERGE_GAP_BYTES?: string;
  DECODE_MAX_RANGE_READS?: string;
  MAX_DATASET_ADD_IMAGES?: string;
  MAX_DATASET_IMAGES?: string;
  DEFAULT_TOKENIZER?: string;
  LATENT_SHARD_SIZE?: string;
  EXTRACT_TASK_SHARDS?: string;
};
