/**
 * Serving a finished encode job's tokens: the stored token stream as it is (with Range, so any
 * record can be fetched alone), or converted to JSON or .npy; and likewise each token shard of a
 * dataset encode job, whose whole stream is made from its shards (dataset-stream.ts). This is
 * the latency-critical route, so everything needed to answer a 304 comes from the job row
 * already read (the ETag was recorded at completion) and full answers go through the Cache API.
 *
 * The cache key names the job (and shard), whose tokens never change once it succeeded; it is
 * reached only after the key and the job's tenant were checked, so sharing one cache is safe.
 */
import {
  bucketKeys,
  readTokenStream,
  recordStride,
  TOKEN_JSON_MAX_TOKENS,
  TOKEN_STREAM_MEDIA_TYPE,
  type TokenStreamHeader,
  writeTokenJson,
  writeTokenNpy,
} from "@revq/shared";
import type { EncodeResult } from "../../db/job-results.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";
import { etagMatches } from "../objects/http-range.ts";
import { serveObject } from "../objects/serve.ts";
import { isDatasetResult } from "./dataset-encode.ts";
import { datasetStreamResponse } from "./dataset-stream.ts";
import { succeededResult } from "./outputs.ts";
import type { JobRow } from "./read.ts";

export const TOKEN_FORMATS = ["binary", "json", "npy"] as const;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];

const MEDIA_TYPES: Record<TokenFormat, string> = {
  binary: TOKEN_STREAM_MEDIA_TYPE,
  json: "application/json",
  npy: "application/octet-stream",
};

/** What clients may cache: it is theirs alone (private) and never changes (immutable). */
const CLIENT_CACHE = "private, max-age=31536000, immutable";
/** What the edge's own cache stores under its internal key. */
const EDGE_CACHE = "public, max-age=31536000, immutable";

function cacheKey(name: string, format: TokenFormat): Request {
  return new Request(`https://tokens.revq.internal/${name}/${format}`);
}

/**
 * A succeeded encode job's one stored token stream, for decoding; a dataset encode job has one
 * per shard instead (422 format-not-for-dataset).
 */
export function tokensOf(job: JobRow): EncodeResult["tokens"] {
  const result = succeededResult(job, "encode", "tokens");
  if (isDatasetResult(result)) throw notOneStream(job, "decoded whole");
  return result.tokens;
}

/** A dataset encode job's whole tokens asked for in a way only one stored stream offers. */
export function notOneStream(job: JobRow, what: string): HttpProblem {
  return new HttpProblem(
    422,
    "format-not-for-dataset",
    `Job ${job.id} encoded a dataset into shards, which are not ${what}: take a shard's tokens (GET /v1/jobs/${job.id}/shards/{index}/tokens) and upload them (POST /v1/tokens).`,
  );
}

/** One stored token stream to serve: where, what its header says, and its name (cache, files). */
export type StoredTokens = { key: string; tokens: EncodeResult["tokens"]; name: string };

/** A succeeded encode job's tokens; a dataset encode job's whole stream is only binary. */
export async function jobTokenResponse(
  env: Env,
  waitUntil: (promise: Promise<unknown>) => void,
  request: Request,
  job: JobRow,
  format: TokenFormat,
): Promise<Response> {
  const result = succeededResult(job, "encode", "tokens");
  if (isDatasetResult(result)) {
    if (format !== "binary") {
      throw new HttpProblem(
        406,
        "format-not-for-dataset",
        `Job ${job.id} encoded a dataset: its whole token stream is served as binary only; each of its shards is also served as ${format} (GET /v1/jobs/${job.id}/shards/{index}/tokens?format=${format}).`,
      );
    }
    return datasetStreamResponse(env, request, job, result);
  }
  const stored = { key: bucketKeys.jobTokens(job.tenantId, job.id), tokens: result.tokens };
  return tokenResponse(env, waitUntil, request, { ...stored, name: job.id }, format);
}

export async function tokenResponse(
  env: Env,
  waitUntil: (promise: Promise<unknown>) => void,
  request: Request,
  stored: StoredTokens,
  format: TokenFormat,
): Promise<Response> {
  const { tokens, key, name } = stored;
  const header: TokenStreamHeader = { version: 1, ...tokens };
  const etag = format === "binary" ? `"${tokens.etag}"` : `"${tokens.etag}.${format}"`;
  const headers: Record<string, string> = {
    etag,
    "cache-control": CLIENT_CACHE,
    "content-type": MEDIA_TYPES[format],
    "revq-tokenizer": tokens.tokenizerHash,
    "revq-record-count": String(tokens.recordCount),
    "revq-record-stride": String(recordStride(header)),
  };
  if (format === "npy") headers["content-disposition"] = `attachment; filename="${name}.npy"`;
  if (etagMatches(request.headers.get("if-none-match") ?? undefined, etag)) {
    return new Response(null, { status: 304, headers });
  }
  if (format === "binary" && request.headers.has("range")) {
    return serveObject(request, {
      bucket: env.BUCKET,
      key,
      size: tokens.bytes,
      etag,
      contentType: MEDIA_TYPES.binary,
      cacheControl: CLIENT_CACHE,
      headers,
    });
  }
  const cache = caches.default;
  const cached = await cache.match(cacheKey(name, format));
  if (cached) return withHeaders(cached, headers);

  if (format === "json" && tokens.recordCount * tokens.tokensPerRecord > TOKEN_JSON_MAX_TOKENS) {
    throw new HttpProblem(
      406,
      "too-many-tokens-for-json",
      `${name} has ${tokens.recordCount * tokens.tokensPerRecord} token ids; JSON holds at most ${TOKEN_JSON_MAX_TOKENS}. Use format=binary or npy.`,
    );
  }
  const object = await env.BUCKET.get(key);
  if (!object)
    throw new HttpProblem(500, "object-missing", `The token stream of ${name} is missing.`);
  let body: ReadableStream | Uint8Array | string = object.body;
  if (format !== "binary") {
    // Decoding checks every record's CRC, so a corrupted object is never served converted.
    const decoded = readTokenStream(new Uint8Array(await object.arrayBuffer()));
    body =
      format === "json"
        ? JSON.stringify(writeTokenJson(decoded.header, decoded.tokens))
        : writeTokenNpy(decoded.header, decoded.tokens);
  }
  const response = new Response(body, { headers: { ...headers, "cache-control": EDGE_CACHE } });
  waitUntil(cache.put(cacheKey(name, format), response.clone()));
  return withHeaders(response, headers);
}

function withHeaders(response: Response, headers: Record<string, string>): Response {
  const out = new Response(response.body, response);
  for (const [name, value] of Object.entries(headers)) out.headers.set(name, value);
  out.headers.set("accept-ranges", "bytes");
  return out;
}
