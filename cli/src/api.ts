/**
 * The edge's client API over fetch: bearer key, problem+json refusals turned into CliErrors with
 * the edge's own detail, answers validated by schema. Reads, and calls that create something
 * under an Idempotency-Key, are retried when the edge could not be reached or failed (5xx), so a
 * flaky connection neither loses nor doubles an upload or a job. Any call the edge rate-limits
 * (429: nothing was done) is sent again after its Retry-After, so a long upload slows down
 * instead of failing.
 */
import { type ProblemAnswer, readProblem, sleep } from "@revq/shared";
import type * as z from "zod";
import type { Connection } from "./config.ts";
import { CliError, EXIT } from "./errors.ts";

export type Body = Uint8Array | FormData | Record<string, unknown>;

export type CallOptions = {
  query?: Record<string, string | number | undefined>;
  body?: Body;
  contentType?: string;
  /** Retry (with this key) when unreachable or 5xx. */
  idempotencyKey?: string;
  headers?: Record<string, string>;
};

const RETRY_DELAYS_MS = [500, 2000, 5000];
/** How often a rate-limited call is sent again (each after the edge's Retry-After). */
const RATE_LIMITED_TRIES = 10;
/** The longest Retry-After honoured, in seconds; the edge's is 60. */
const MAX_RETRY_AFTER_S = 120;

export class Api {
  readonly url: string;
  private readonly key: string;

  constructor(connection: Connection) {
    this.url = connection.url;
    this.key = connection.apiKey;
  }

  /** A JSON answer, checked with `schema`. */
  async json<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    options: CallOptions = {},
  ): Promise<z.infer<S>> {
    const response = await this.call(method, path, options);
    const text = await response.text();
    let value: unknown;
    try {
      value = text ? JSON.parse(text) : {};
    } catch {
      throw new CliError(
        `${method} ${path}: the edge answered something that is not JSON`,
        EXIT.unavailable,
      );
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new CliError(
        `${method} ${path}: unexpected answer (${issue.path.join(".") || "body"}: ${issue.message})`,
        EXIT.unavailable,
        { hint: "the edge may run another version than this CLI" },
      );
    }
    return parsed.data;
  }

  /** A binary answer. */
  async bytes(method: string, path: string, options: CallOptions = {}): Promise<Uint8Array> {
    const response = await this.call(method, path, options);
    return new Uint8Array(await response.arrayBuffer());
  }

  /** The response, once it is 2xx (or 304); refusals and failures throw CliError. */
  async call(method: string, path: string, options: CallOptions = {}): Promise<Response> {
    const url = new URL(`${this.url}${path}`);
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.key}`,
      ...options.headers,
    };
    let body: RequestInit["body"];
    if (options.body instanceof Uint8Array || options.body instanceof FormData) {
      body = options.body;
      if (options.contentType) headers["content-type"] = options.contentType;
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
    // Reads are safe to repeat; writes only under an idempotency key.
    const repeatable = method === "GET" || options.idempotencyKey !== undefined;
    const attempts = repeatable ? RETRY_DELAYS_MS.length + 1 : 1;
    let limited = 0;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, { method, headers, body });
      } catch (error) {
        if (attempt < attempts) {
          await sleep(RETRY_DELAYS_MS[attempt - 1]);
          continue;
        }
        throw unreachable(this.url, error);
      }
      if (response.ok || response.status === 304) return response;
      // The edge refuses a rate-limited call before doing anything (docs/api.md, "Rate limits"):
      // any call, a write without a key too, may be sent again once the window has passed.
      if (response.status === 429 && limited < RATE_LIMITED_TRIES) {
        limited++;
        attempt--; // not a failed attempt
        await response.body?.cancel();
        const seconds = retryAfterSeconds(response.headers.get("retry-after"));
        process.stderr.write(
          `revq: the edge rate-limited ${method} ${path}; sending it again in ${seconds} s\n`,
        );
        await sleep(seconds * 1000);
        continue;
      }
      const error = await refusal(method, path, response);
      // idempotency-key-in-progress: an earlier try is still running on the edge.
      const retryable = response.status >= 500 || error.code === "idempotency-key-in-progress";
      if (!retryable || attempt >= attempts) throw error;
      await sleep(RETRY_DELAYS_MS[attempt - 1]);
    }
  }
}

/** Retry-After in seconds (a count or an HTTP date), within [0, MAX_RETRY_AFTER_S]; 1 if absent. */
function retryAfterSeconds(header: string | null): number {
  if (header === null) return 1;
  const seconds = /^\d+$/.test(header.trim())
    ? Number(header)
    : Math.ceil((Date.parse(header) - Date.now()) / 1000);
  return Number.isFinite(seconds) ? Math.min(MAX_RETRY_AFTER_S, Math.max(0, seconds)) : 1;
}

function unreachable(url: string, error: unknown): CliError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (error as Error).message;
  const local = /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(url);
  return new CliError(`cannot reach the edge at ${url} (${why})`, EXIT.unavailable, {
    hint: local
      ? "is the local stack running? Start it with `npm start` in the revq repository"
      : "check REVQ_URL and your network",
  });
}

async function refusal(method: string, path: string, response: Response): Promise<CliError> {
  const text = await response.text();
  // Not a problem document (a proxy's error page, say): the status and the text are all there is.
  const problem: Partial<ProblemAnswer> = readProblem(text) ?? {};
  const detail = problem.detail ?? (text.slice(0, 200) || response.statusText);
  const message = `${method} ${path}: ${response.status} ${detail}`;
  const code = problem.code;
  if (response.status === 401) {
    return new CliError(message, EXIT.auth, {
      code,
      hint: "check REVQ_API_KEY: the edge does not know this key, or it was revoked",
    });
  }
  // Other 403s refuse the request, not the key (a public tokenizer is not the tenant's to delete).
  if (response.status === 403 && (code === undefined || code === "wrong-key-kind")) {
    return new CliError(message, EXIT.auth, {
      code,
      hint: "use an API key (rvq_api_...), not a worker or admin key",
    });
  }
  if (response.status >= 500) return new CliError(message, EXIT.unavailable, { code });
  if (code === "route-not-found") {
    return new CliError(message, EXIT.refused, {
      code,
      hint: "this edge does not have that route: it may run an older version than this CLI",
    });
  }
  return new CliError(message, EXIT.refused, { code });
}
