/**
 * The edge's API as the console calls it: same origin, the API key as the bearer header (no
 * cookies, so no CSRF surface). Failures come back as one of three errors, because the page says
 * something different for each: the key was refused, the edge did not answer, or the edge
 * answered with a problem document.
 */

/** 401 or 403: the key is unknown, revoked, or not an API key. */
export class KeyRefused extends Error {}

/** No answer at all (the edge is down or the network is gone): worth retrying. */
export class EdgeUnreachable extends Error {}

/** Any other non-2xx answer, with the problem document's code and detail (RFC 9457). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

type Problem = { code?: string; detail?: string; title?: string };

async function problemOf(response: Response): Promise<Problem> {
  try {
    return (await response.json()) as Problem;
  } catch {
    return {};
  }
}

export type Api = {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** A body sent as it is (a form, a file), with its own content type. */
  upload<T>(path: string, body: FormData | Blob): Promise<T>;
  /** An answer's bytes: an image, a tokenizer file, a token stream. */
  bytes(path: string): Promise<Uint8Array>;
  /** DELETE, whose answer has no body. */
  remove(path: string): Promise<void>;
};

export function apiClient(key: string): Api {
  async function call(method: string, path: string, body?: BodyInit, type?: string) {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (type) headers["content-type"] = type;
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body,
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new EdgeUnreachable(`The edge at ${location.origin} did not answer.`);
    }
    if (response.ok) return response;
    const problem = await problemOf(response);
    const detail = problem.detail ?? problem.title ?? response.statusText;
    if (response.status === 401 || response.status === 403) throw new KeyRefused(detail);
    throw new ApiError(response.status, problem.code ?? String(response.status), detail);
  }
  const json = async <T>(answer: Promise<Response>) => (await (await answer).json()) as T;
  return {
    get: (path) => json(call("GET", path)),
    post: (path, body) =>
      body === undefined
        ? json(call("POST", path))
        : json(call("POST", path, JSON.stringify(body), "application/json")),
    upload: (path, body) =>
      json(call("POST", path, body, body instanceof Blob ? body.type : undefined)),
    bytes: async (path) => new Uint8Array(await (await call("GET", path)).arrayBuffer()),
    remove: async (path) => void (await call("DELETE", path)),
  };
}
/** Where a tokenizer's file is downloaded: its manifest path, each segment escaped (it may hold /). */
export function tokenizerFilePath(tokenizer: string, path: string): string {
  const segments = path.split("/").map(encodeURIComponent).join("/");
  return `/v1/tokenizers/${encodeURIComponent(tokenizer)}/files/${segments}`;
}

/** One line for a person: what went wrong and, where it helps, what to do. */
export function describeError(error: unknown): string {
  if (error instanceof KeyRefused) return `The edge refused this key: ${error.message}`;
  if (error instanceof EdgeUnreachable)
    return `${error.message} It may have stopped or restarted; retrying.`;
  if (error instanceof ApiError) return `${error.message} (${error.status} ${error.code})`;
  return error instanceof Error ? error.message : String(error);
}
