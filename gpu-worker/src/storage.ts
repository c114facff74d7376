/**
 * The bucket, through the S3 API (R2, AWS S3, MinIO, wrangler dev's local door). Reads and writes
 * whole objects: a put is atomic in S3, so a reader sees the old object, the new one, or none,
 * never part of one. A bucket that is unreachable or answers 5xx is retried with backoff until
 * the caller's deadline; a missing object or a refused request is not worth retrying.
 */
import {
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { S3Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { type BackoffPolicy, DEFAULT_BACKOFF, retrying } from "./retry.ts";

export type BucketCallOptions = { signal?: AbortSignal; deadline?: number };

export interface Bucket {
  get(key: string, options?: BucketCallOptions): Promise<Uint8Array>;
  put(
    key: string,
    bytes: Uint8Array,
    contentType: string,
    options?: BucketCallOptions,
  ): Promise<void>;
}

export class BucketError extends Error {
  override name = "BucketError";
  /** not-found, denied, unreachable or failed (any other answer). */
  readonly code: "not-found" | "denied" | "unreachable" | "failed";
  readonly key: string;

  constructor(code: BucketError["code"], key: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.key = key;
  }

  get retryable(): boolean {
    return this.code === "unreachable";
  }
}

export type S3BucketOptions = {
  log: Logger;
  backoff?: BackoffPolicy;
  /** How long one call keeps retrying an unreachable bucket when the caller sets no deadline. */
  retryMs?: number;
};

export function s3Bucket(config: S3Config, options: S3BucketOptions): Bucket {
  const client = new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    credentials:
      config.accessKeyId && config.secretAccessKey
        ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }
        : undefined,
    // Retries are ours (same backoff and deadlines as the edge's); checksums only where the
    // service requires them, since not every S3-compatible store implements the newer ones.
    maxAttempts: 1,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const call = <T>(what: string, key: string, fn: () => Promise<T>, o: BucketCallOptions) =>
    retrying(
      async () => {
        try {
          return await fn();
        } catch (error) {
          if (o.signal?.aborted) throw o.signal.reason;
          throw bucketError(error, what, key);
        }
      },
      {
        policy: options.backoff ?? DEFAULT_BACKOFF,
        retryable: (error) => error instanceof BucketError && error.retryable,
        signal: o.signal,
        deadline: o.deadline ?? Date.now() + (options.retryMs ?? 300_000),
        onRetry: (error, attempt, delayMs) =>
          options.log.warn("bucket call failed; retrying", {
            call: what,
            key,
            error,
            attempt: attempt + 1,
            retryInMs: Math.round(delayMs),
          }),
      },
    );
  return {
    get: (key, o = {}) =>
      call(
        "get",
        key,
        async () => {
          const answer = await client.send(
            new GetObjectCommand({ Bucket: config.bucket, Key: key }),
            { abortSignal: o.signal },
          );
          if (!answer.Body) throw new BucketError("failed", key, `get ${key}: empty answer`);
          return answer.Body.transformToByteArray();
        },
        o,
      ),
    put: (key, bytes, contentType, o = {}) =>
      call(
        "put",
        key,
        async () => {
          await client.send(
            new PutObjectCommand({
              Bucket: config.bucket,
              Key: key,
              Body: bytes,
              ContentType: contentType,
              ContentLength: bytes.length,
            }),
            { abortSignal: o.signal },
          );
        },
        o,
      ),
  };
}

function bucketError(error: unknown, what: string, key: string): BucketError {
  if (error instanceof BucketError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (
    error instanceof NoSuchKey ||
    (error instanceof S3ServiceException && error.name === "NotFound")
  ) {
    return new BucketError("not-found", key, `${what} ${key}: no such object`, { cause: error });
  }
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode ?? 0;
    if (status >= 500 || status === 429 || status === 408) {
      return new BucketError("unreachable", key, `${what} ${key}: ${status} ${message}`, {
        cause: error,
      });
    }
    if (status === 401 || status === 403) {
      return new BucketError("denied", key, `${what} ${key}: refused (${message})`, {
        cause: error,
      });
    }
    return new BucketError("failed", key, `${what} ${key}: ${status} ${message}`, { cause: error });
  }
  // No answer at all: refused, reset, DNS, timeout.
  return new BucketError("unreachable", key, `${what} ${key}: ${message}`, { cause: error });
}
