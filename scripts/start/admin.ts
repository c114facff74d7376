/** Calls to the edge's admin API, as the seed needs them; a refusal throws with its detail. */

export class AdminError extends Error {
  readonly status: number;
  readonly code: string | undefined;

  constructor(message: string, status: number, code: string | undefined) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Admin {
  readonly url: string;
  private readonly key: string;

  constructor(url: string, key: string) {
    this.url = url;
    this.key = key;
  }

  /** A JSON call (or a bytes upload) with a key: the admin key unless another is given. */
  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    options: { key?: string } = {},
  ): Promise<T> {
    const bytes = body instanceof Uint8Array;
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${options.key ?? this.key}`,
        ...(body === undefined
          ? {}
          : { "content-type": bytes ? "application/octet-stream" : "application/json" }),
      },
      body: body === undefined ? undefined : bytes ? body : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      let problem: { detail?: string; code?: string } = {};
      try {
        problem = JSON.parse(text);
      } catch {
        // not a problem document
      }
      throw new AdminError(
        `${method} ${path}: ${response.status} ${problem.detail ?? text}`,
        response.status,
        problem.code,
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
