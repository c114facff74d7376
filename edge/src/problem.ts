/**
 * Errors are answers: every failure leaves the edge as an RFC 9457 problem+json document. Code
 * throws HttpProblem (or lets a shared FormatError or a zod validation error escape) and the one
 * error handler in app.ts turns it into a response with problemResponse.
 */
import {
  FormatError,
  PROBLEM_MEDIA_TYPE,
  PROBLEM_TYPE_PREFIX,
  type ProblemCode,
} from "@revq/shared";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type FieldError = { path: string; message: string };

export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  /** The machine-readable code, also the tail of `type`. */
  code: string;
  /** One entry per invalid field, for validation problems. */
  errors?: FieldError[];
};

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  409: "Conflict",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

/**
 * The 400 problem for a request part that failed its schema (`where`: json, query, form...),
 * naming every invalid field, as the one error shape all routes answer with.
 */
export function invalidRequest(
  where: string,
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  what = "Invalid request",
): HttpProblem {
  const errors = issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join("."),
    message: issue.message,
  }));
  const detail = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
  return new HttpProblem(400, "invalid-request", `${what}: ${detail}`, { errors });
}

export class HttpProblem extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: ProblemCode;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: ProblemCode,
    detail: string,
    extra: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = "HttpProblem";
    this.status = status;
    this.code = code;
    this.errors = extra.errors;
    this.headers = extra.headers ?? {};
  }
}

/**
 * FormatErrors (`format.code`) that mean "well-formed, but it does not fit what it is used
 * with": 422. Every other FormatError is a malformed body: 400.
 */
const UNPROCESSABLE_FORMAT_CODES = new Set([
  "token-stream.bad-tokenizer-hash",
  "token-stream.tokenizer-mismatch",
  "manifest.invalid",
]);

/** The problem an error stands for; unknown errors become an opaque 500. */
export function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof FormatError) {
    const status = UNPROCESSABLE_FORMAT_CODES.has(`${error.format}.${error.code}`) ? 422 : 400;
    return new HttpProblem(status, `${error.format}.${error.code}`, error.message);
  }
  if (error instanceof HTTPException) {
    // Thrown by Hono itself, e.g. a JSON body that does not parse.
    const { status } = error;
    const code =
      status === 415
        ? "unsupported-media-type"
        : status === 413
          ? "content-too-large"
          : "bad-request";
    const detail =
      status === 415
        ? "This route does not accept the request's Content-Type; see the OpenAPI document."
        : error.message || (TITLES[status] ?? "Error");
    return new HttpProblem(status, code, detail);
  }
  return new HttpProblem(500, "internal", "The edge failed to handle this request.");
}

export function problemBody(problem: HttpProblem, instance?: string): ProblemBody {
  return {
    type: `${PROBLEM_TYPE_PREFIX}${problem.code}`,
    title: TITLES[problem.status] ?? "Error",
    status: problem.status,
    detail: problem.message,
    ...(instance === undefined ? {} : { instance }),
    code: problem.code,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
}

export function problemResponse(problem: HttpProblem, instance?: string): Response {
  return new Response(JSON.stringify(problemBody(problem, instance)), {
    status: problem.status,
    headers: { ...problem.headers, "content-type": PROBLEM_MEDIA_TYPE },
  });
}
