/**
 * A dataset encode job's tokens as ONE token stream in dataset order: one header for all its
 * records, then the records of each shard in turn, streamed from the bucket a chunk at a time
 * (a Worker cannot hold a large dataset's tokens), with a single Range anywhere in it, across
 * shard boundaries too.
 *
 * A record's CRC covers its index (docs/token-stream.md), so record r of shard s, stored with
 * index r, is record firstRecord(s) + r of the whole stream: each record's CRC is checked
 * against its index in the shard and written again for its index in the stream.
 */
import {
  crc32,
  encodeHeader,
  recordPayloadBytes,
  recordStride,
  TOKEN_STREAM_HEADER_BYTES,
  TOKEN_STREAM_MEDIA_TYPE,
  type TokenShard,
  type TokenStreamHeader,
} from "@revq/shared";
import type { Env } from "../../env.ts";
import { contentRange, etagMatches, parseRange } from "../objects/http-range.ts";
import { type DatasetResult, shardKey } from "./dataset-encode.ts";
import type { JobRow } from "./read.ts";

const CLIENT_CACHE = "private, max-age=31536000, immutable";

/** Rewrites the CRC of record `local` of a shard (`record`: its bytes) for index `global`. */
function reindex(header: TokenStreamHeader, record: Uint8Array, local: number, global: number) {
  const payload = recordPayloadBytes(header);
  const packed = record.subarray(0, payload);
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const index = new Uint8Array(4);
  const indexView = new DataView(index.buffer);
  indexView.setUint32(0, local, true);
  if (crc32(packed, crc32(index)) !== view.getUint32(payload, true)) {
    throw new Error(`record ${local} of a token shard fails its CRC`);
  }
  indexView.setUint32(0, global, true);
  view.setUint32(payload, crc32(packed, crc32(index)), true);
}

/** The bytes [offset, end) of the whole stream, shard after shard. */
async function* streamBytes(
  bucket: R2Bucket,
  keyOf: (shard: TokenShard) => string,
  header: TokenStreamHeader,
  shards: TokenShard[],
  offset: number,
  end: number,
): AsyncGenerator<Uint8Array> {
  const H = TOKEN_STREAM_HEADER_BYTES;
  if (offset < H) yield encodeHeader(header).subarray(offset, Math.min(H, end));
  if (end <= H) return;
  const stride = recordStride(header);
  // Records first .. last (inclusive) hold the bytes asked for.
  const first = Math.floor((Math.max(offset, H) - H) / stride);
  const last = Math.floor((end - 1 - H) / stride);
  for (const shard of shards) {
    const lo = Math.max(first, shard.firstRecord);
    const hi = Math.min(last, shard.firstRecord + shard.records - 1);
    if (lo > hi) continue;
    const key = keyOf(shard);
    const range = { offset: H + (lo - shard.firstRecord) * stride, length: (hi - lo + 1) * stride };
    const object = await bucket.get(key, { range });
    if (!object) throw new Error(`token shard ${key} is missing`);
    let pending = new Uint8Array(0);
    let next = lo; // the global index of the next whole record
    for await (const chunk of object.body as ReadableStream<Uint8Array>) {
      const bytes = new Uint8Array(pending.length + chunk.length);
      bytes.set(pending);
      bytes.set(chunk, pending.length);
      const whole = Math.floor(bytes.length / stride);
      for (let i = 0; i < whole; i++) {
        const record = bytes.subarray(i * stride, (i + 1) * stride);
        reindex(header, record, next + i - shard.firstRecord, next + i);
      }
      // Whole records, trimmed to the range: the first and last may be cut.
      const start = H + next * stride;
      const from = Math.max(offset, start) - start;
      const to = Math.min(end, start + whole * stride) - start;
      if (to > from) yield bytes.subarray(from, to);
      pending = bytes.slice(whole * stride);
      next += whole;
    }
    if (pending.length > 0 || next !== hi + 1) {
      throw new Error(`token shard ${key} ended early, at record ${next} of ${hi + 1}`);
    }
  }
}

function readable(source: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream({
    async pull(controller) {
      const { value, done } = await source.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await source.return(undefined);
    },
  });
}

/** The whole stream (or a Range of it): strong ETag, If-None-Match, If-Range, as for any download. */
export function datasetStreamResponse(
  env: Env,
  request: Request,
  job: JobRow,
  result: DatasetResult,
): Response {
  const { tokens, shards } = result;
  const header: TokenStreamHeader = { version: 1, ...tokens };
  const etag = `"${tokens.etag}"`;
  const headers = new Headers({
    etag,
    "cache-control": CLIENT_CACHE,
    "accept-ranges": "bytes",
    "content-type": TOKEN_STREAM_MEDIA_TYPE,
    "revq-tokenizer": tokens.tokenizerHash,
    "revq-record-count": String(tokens.recordCount),
    "revq-record-stride": String(recordStride(header)),
    "revq-shard-count": String(shards.length),
  });
  if (etagMatches(request.headers.get("if-none-match") ?? undefined, etag)) {
    return new Response(null, { status: 304, headers });
  }
  const ifRange = request.headers.get("if-range");
  const rangeHeader = ifRange === null || ifRange === etag ? request.headers.get("range") : null;
  const range = parseRange(rangeHeader ?? undefined, tokens.bytes);
  const { offset, length } = range ?? { offset: 0, length: tokens.bytes };
  const keyOf = (shard: TokenShard) => shardKey(job.tenantId, result, shard.index);
  const bytes = streamBytes(env.BUCKET, keyOf, header, shards, offset, offset + length);
  // A fixed-length body: the answer says its Content-Length, as a stored object's does.
  const body = readable(bytes).pipeThrough(new FixedLengthStream(length));
  headers.set("content-length", String(length));
  if (range) headers.set("content-range", contentRange(range, tokens.bytes));
  return new Response(body, { status: range ? 206 : 200, headers });
}
