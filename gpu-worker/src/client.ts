/**
 * The worker API of the edge (`/v1/worker/...`, docs/api.md), as the worker sees it: every answer
 * is validated with the shared protocol schemas, and calls that fail because the edge is
 * unreachable or overloaded (network errors, timeouts, 5xx, 429) are retried with backoff until
 * they succeed, the caller's deadline passes or its signal is aborted. Problem answers (4xx) are
 * thrown as EdgeError with the edge's stable `code`.
 */
import {
  type BackoffPolicy,
  type CompleteRequest,
  CompleteResponse,
  DEFAULT_BACKOFF,
  type FailRequest,
  FailResponse,
  type HeartbeatRequest,
  HeartbeatResponse,
  type LeaseRequest,
  LeaseResponse,
  type ObjectsRequest,
  ObjectsResponse,
  type ReleaseRequest,
  ReleaseResponse,
  readProblem,
  retrying,
} from "@revq/shared";
import type * as z from "zod";
import type { Logger } from "./log.ts";

/** The edge answered with an error (an RFC 9457 problem, when it could say more). */
export class EdgeError extends Error {
  override name = "EdgeError";
  readonly status: number;
  /** The problem's stable code (`lease-lost`, `job-cancelled`...), or `http-<status>`. */
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** Overload and server errors pass; anything else is an answer that will not change. */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429 || this.status === 408;
  }
}

/** The edge could not be reached at all (refused, reset, timed out). */
export class EdgeUnreachable extends Error {
  override name = "EdgeUnreachable";
}

/** The edge answered 2xx with something the protocol does not allow: a version mismatch. */
export class EdgeProtocolError extends Error {
  override name = "EdgeProtocolError";
}

export function isTransient(error: unknown): boolean {
  return error instanceof EdgeUnreachable || (error instanceof EdgeError && error.retryable);
}

/** When to give up on one call: on abort (shutdown) and/or at a deadline (a lease's expiry). */
export type CallOptions = { signal?: AbortSignal; deadline?: number };

export type EdgeClientOptions = {
  baseUrl: string;
  workerKey: string;
  log: Logger;
  backoff?: BackoffPolicy;
  /** How long one request may take beyond any long-poll wait it asks for. */
  requestTimeoutMs?: number;
};

export class EdgeClient {
  private readonly base: URL;
  private readonly options: EdgeClientOptions;

  constructor(options: EdgeClientOptions) {
    this.base = new URL("/v1/worker/", options.baseUrl);
    this.options = options;
  }

  /** Leases tasks, long-polling; retries until it gets an answer or `signal` is aborted. */
  lease(request: LeaseRequest, options: CallOptions = {}): Promise<LeaseResponse> {
    return this.call("lease", request, LeaseResponse, options, request.waitSeconds * 1000);
  }

  heartbeat(
    taskId: string,
    request: HeartbeatRequest,
    options: CallOptions = {},
  ): Promise<HeartbeatResponse> {
    return this.call(
      `tasks/${encodeURIComponent(taskId)}/heartbeat`,
      request,
      HeartbeatResponse,
      options,
    );
  }

  complete(
    taskId: string,
    request: CompleteRequest,
    options: CallOptions = {},
  ): Promise<CompleteResponse> {
    return this.call(
      `tasks/${encodeURIComponent(taskId)}/complete`,
      request,
      CompleteResponse,
      options,
    );
  }

  /** Presigned URLs for objects of a held task (storage.ts uses them). */
  objects(
    taskId: string,
    request: ObjectsRequest,
    options: CallOptions = {},
  ): Promise<ObjectsResponse> {
    return this.call(
      `tasks/${encodeURIComponent(taskId)}/objects`,
      request,
      ObjectsResponse,
      options,
    );
  }

  fail(taskId: string, request: FailRequest, options: CallOptions = {}): Promise<FailResponse> {
    return this.call(`tasks/${encodeURIComponent(taskId)}/fail`, request, FailResponse, options);
  }

  release(
    taskId: string,
    request: ReleaseRequest,
    options: CallOptions = {},
  ): Promise<ReleaseResponse> {
    return this.call(
      `tasks/${encodeURIComponent(taskId)}/release`,
      request,
      ReleaseResponse,
      options,
    );
  }

  private call<S extends z.ZodType>(
    path: string,
    body: unknown,
    schema: S,
    options: CallOptions,
    waitMs = 0,
  ): Promise<z.infer<S>> {
    return retrying(() => this.post(path, body, schema, options.signal, waitMs), {
      policy: this.options.backoff ?? DEFAULT_BACKOFF,
      retryable: isTransient,
      signal: options.signal,
      deadline: options.deadline,
      onRetry: (error, attempt, delayMs) =>
        this.options.log.warn("edge call failed; retrying", {
          call: path,
          error,
          attempt: attempt + 1,
          retryInMs: Math.round(delayMs),
        }),
    });
  }

  private async post<S extends z.ZodType>(
    path: string,
    body: unknown,
    schema: S,
    signal: AbortSignal | undefined,
    waitMs: number,
  ): Promise<z.infer<S>> {
    const url = new URL(path, this.base);
    const timeout = AbortSignal.timeout(waitMs + (this.options.requestTimeoutMs ?? 30_000));
    let text: string;
    let status: number;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${this.options.workerKey}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new EdgeUnreachable(`POST ${url.pathname}: ${errorReason(error)}`, { cause: error });
    }
    if (status < 200 || status > 299) throw problemError(status, text, url.pathname);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new EdgeProtocolError(`POST ${url.pathname}: the answer is not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
      throw new EdgeProtocolError(
        `POST ${url.pathname}: unexpected answer (${problems.join("; ")})`,
      );
    }
    return parsed.data;
  }
}

/** An error's message, with the cause's where there is one. */
export function errorReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // undici reports "fetch failed" with the socket error as the cause.
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

function problemError(status: number, text: string, path: string): EdgeError {
  const problem = readProblem(text);
  if (problem) {
    return new EdgeError(
      status,
      problem.code,
      `POST ${path}: ${problem.detail ?? `status ${status}`}`,
    );
  }
  // Not a problem document (a proxy's error page, say): the status is all there is.
  return new EdgeError(status, `http-${status}`, `POST ${path}: status ${status}`);
}
