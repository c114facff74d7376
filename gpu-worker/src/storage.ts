/**
 * The bucket, as one task sees it: whole objects read and written through presigned URLs the
 * edge grants for that task alone (`POST /v1/worker/tasks/{id}/objects`). The worker holds no
 * bucket credential, so it can reach only what its tasks name. A put is atomic in S3: a reader
 * sees the old object, the new one, or none, never part of one.
 *
 * URLs are asked for in batches, one per try of a transfer; the first read of a task's first
 * inputs uses the URL that came with its lease. A bucket that is unreachable or
 * answers 5xx is retried with backoff until the caller's deadline; a missing object, a refused
 * request or an object the task may not touch is not worth retrying.
 */
import { createHash } from "node:crypto";
import {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  type GrantedObject,
  MAX_OBJECTS_PER_GRANT,
  type ObjectRequest,
  type ObjectsResponse,
  retrying,
} from "@revq/shared";
import { EdgeError, EdgeProtocolError, errorReason, isTransient } from "./client.ts";
import type { Logger } from "./log.ts";

export type BucketCallOptions = { signal?: AbortSignal; deadline?: number };
/** A bucket and how long to wait for it: what a read on a task's behalf needs. */
export type BucketAccess = BucketCallOptions & { bucket: Bucket };

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

/** Asks the edge for URLs of these objects (at most MAX_OBJECTS_PER_GRANT): EdgeClient.objects. */
export type GrantObjects = (objects: ObjectRequest[]) => Promise<ObjectsResponse>;

export type GrantedBucketOptions = {
  log: Logger;
  backoff?: BackoffPolicy;
  /** How long one call keeps retrying an unreachable bucket when the caller sets no deadline. */
  retryMs?: number;
  /** URLs granted with the task's lease (LeasedTask.objects): each serves one try, then is gone. */
  granted?: GrantedObject[];
};

/** A granted URL closer than this to its expiry is not used: it could expire on the way. */
const EXPIRY_MARGIN_MS = 30_000;

type Pending = {
  request: ObjectRequest;
  resolve: (granted: GrantedObject) => void;
  reject: (error: unknown) => void;
};

/**
 * URLs asked for in batches: every request made in one turn of the event loop goes in one call
 * (a task loads a batch of images at once). None is kept: each try of a transfer asks anew, so
 * a retry never uses a URL that may have expired, and a task of 50 000 images holds no list.
 */
function grantBatcher(grant: GrantObjects) {
  let pending: Pending[] = [];

  async function send(batch: Pending[]) {
    try {
      const granted = (await grant(batch.map((p) => p.request))).objects;
      if (granted.length !== batch.length) {
        throw new EdgeProtocolError(`${granted.length} URLs granted for ${batch.length} objects`);
      }
      for (const [i, p] of batch.entries()) p.resolve(granted[i]);
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  function flush() {
    const all = pending;
    pending = [];
    for (let i = 0; i < all.length; i += MAX_OBJECTS_PER_GRANT) {
      void send(all.slice(i, i + MAX_OBJECTS_PER_GRANT));
    }
  }

  return (request: ObjectRequest): Promise<GrantedObject> =>
    new Promise((resolve, reject) => {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ request, resolve, reject });
    });
}

export function grantedBucket(grant: GrantObjects, options: GrantedBucketOptions): Bucket {
  const batched = grantBatcher(grant);
  const leased = new Map((options.granted ?? []).map((g) => [`${g.method} ${g.key}`, g]));

  function urlFor(request: ObjectRequest): Promise<GrantedObject> {
    const id = `${request.method} ${request.key}`;
    const granted = leased.get(id);
    leased.delete(id);
    if (granted && Date.parse(granted.expiresAt) > Date.now() + EXPIRY_MARGIN_MS) {
      return Promise.resolve(granted);
    }
    return batched(request);
  }

  async function send(request: ObjectRequest, init: RequestInit, o: BucketCallOptions) {
    let granted: GrantedObject;
    try {
      granted = await urlFor(request);
    } catch (error) {
      throw grantError(error, request);
    }
    let response: Response;
    try {
      response = await fetch(granted.url, {
        ...init,
        method: granted.method,
        headers: { ...(init.headers as Record<string, string>), ...granted.headers },
        signal: o.signal,
      });
    } catch (error) {
      if (o.signal?.aborted) throw o.signal.reason;
      throw new BucketError("unreachable", request.key, `${what(request)}: ${errorReason(error)}`, {
        cause: error,
      });
    }
    if (response.ok) return response;
    throw await answerError(response, request);
  }

  const call = <T>(request: ObjectRequest, fn: () => Promise<T>, o: BucketCallOptions) =>
    retrying(fn, {
      policy: options.backoff ?? DEFAULT_BACKOFF,
      retryable: (error) => error instanceof BucketError && error.retryable,
      signal: o.signal,
      deadline: o.deadline ?? Date.now() + (options.retryMs ?? 300_000),
      onRetry: (error, attempt, delayMs) =>
        options.log.warn("bucket call failed; retrying", {
          call: request.method,
          key: request.key,
          error,
          attempt: attempt + 1,
          retryInMs: Math.round(delayMs),
        }),
    });

  return {
    get: (key, o = {}) => {
      const request: ObjectRequest = { method: "GET", key };
      return call(
        request,
        async () => {
          const response = await send(request, {}, o);
          return new Uint8Array(await response.arrayBuffer());
        },
        o,
      );
    },
    put: (key, bytes, contentType, o = {}) => {
      const request: ObjectRequest = { method: "PUT", key, sha256: sha256Sync(bytes) };
      return call(
        request,
        async () => {
          await send(request, { body: bytes, headers: { "content-type": contentType } }, o);
        },
        o,
      );
    },
  };
}

/** node's hash: the async WebCrypto one of @revq/shared would copy large outputs first. */
function sha256Sync(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const what = (r: ObjectRequest) => `${r.method === "GET" ? "get" : "put"} ${r.key}`;

/**
 * The edge did not grant the object: it stayed unreachable, or the task may not touch the object.
 * Anything else (the lease is gone, the job was cancelled) is the edge's own answer, passed on.
 */
function grantError(error: unknown, request: ObjectRequest): unknown {
  const message = `${what(request)}: ${errorReason(error)}`;
  if (isTransient(error)) {
    return new BucketError("unreachable", request.key, message, { cause: error });
  }
  if (error instanceof EdgeError && error.code === "object-not-granted") {
    return new BucketError("denied", request.key, message, { cause: error });
  }
  return error;
}

async function answerError(response: Response, request: ObjectRequest): Promise<BucketError> {
  const status = response.status;
  const body = (await response.text().catch(() => "")).slice(0, 2000);
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? `status ${status}`;
  if (status === 404) {
    return new BucketError("not-found", request.key, `${what(request)}: no such object`);
  }
  if (status >= 500 || status === 429 || status === 408) {
    return new BucketError("unreachable", request.key, `${what(request)}: ${status} ${code}`);
  }
  if (status === 401 || status === 403) {
    return new BucketError("denied", request.key, `${what(request)}: refused (${code})`);
  }
  return new BucketError("failed", request.key, `${what(request)}: ${status} ${code}`);
}
