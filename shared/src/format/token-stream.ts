/**
 * The revq token stream, version 1: a 64-byte header followed by N fixed-size records, each the
 * bit-packed token ids of one image plus a CRC-32. The spec is docs/token-stream.md; this module
 * implements it exactly. Little-endian throughout.
 *
 * Every reader here checks sizes against the bytes actually present before allocating anything,
 * so a hostile header cannot make it allocate gigabytes.
 */

import { FormatError } from "../errors.ts";
import { packBits, packedByteLength, paddingIsZero, unpackBits } from "./bitpack.ts";
import type { ByteRange } from "./byte-range.ts";
import { crc32 } from "./crc32.ts";

export const TOKEN_STREAM_MAGIC = "RVQT";
export const TOKEN_STREAM_VERSION = 1;
export const TOKEN_STREAM_HEADER_BYTES = 64;
export const TOKEN_STREAM_MEDIA_TYPE = "application/vnd.revq.tokens";
export const MAX_TOKENS_PER_RECORD = 65536;
export const MIN_CODES_PER_GROUP = 2;
export const MAX_CODES_PER_GROUP = 2 ** 24;
/** recordCount is a u32. */
export const MAX_RECORD_COUNT = 2 ** 32 - 1;
/** Bytes of the CRC-32 that ends each record. */
export const RECORD_CRC_BYTES = 4;

const FORMAT = "token-stream";
const MAGIC_BYTES = new TextEncoder().encode(TOKEN_STREAM_MAGIC);
const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** Byte offsets of the header fields. */
const OFFSET = {
  version: 4,
  headerSize: 6,
  tokenizerHash: 8,
  tokensPerRecord: 40,
  codesPerGroup: 44,
  groups: 48,
  bitsPerToken: 52,
  reserved: 53,
  recordCount: 56,
  crc: 60,
} as const;

/** What a writer chooses; the rest of the header follows from it and the number of records. */
export type TokenStreamParams = {
  /** sha256 of the tokenizer manifest, 64 lowercase hex digits. */
  tokenizerHash: string;
  /** T: token ids per record (image). */
  tokensPerRecord: number;
  /** K: codes in each group's codebook; every id is in [0, K). */
  codesPerGroup: number;
  /** G: codebook groups; token t uses group t mod G. */
  groups: number;
};

export type TokenStreamHeader = TokenStreamParams & {
  version: 1;
  /** ceil(log2 K). */
  bitsPerToken: number;
  /** N: records in the stream. */
  recordCount: number;
};

/** A whole decoded stream: `tokens` holds N*T ids, record after record. */
export type DecodedTokens = {
  header: TokenStreamHeader;
  tokens: Uint32Array;
};

/** Bits per token id for K codes: ceil(log2 K), from 1 (K = 2) to 24 (K = 2^24). */
export function bitsForCodes(codesPerGroup: number): number {
  checkIntegerIn(
    codesPerGroup,
    MIN_CODES_PER_GROUP,
    MAX_CODES_PER_GROUP,
    "codesPerGroup",
    "bad-codes-per-group",
  );
  return 32 - Math.clz32(codesPerGroup - 1);
}

/** Builds and validates the header of a stream of `recordCount` records. */
export function makeTokenStreamHeader(
  params: TokenStreamParams,
  recordCount: number,
): TokenStreamHeader {
  const header: TokenStreamHeader = {
    version: TOKEN_STREAM_VERSION,
    tokenizerHash: params.tokenizerHash,
    tokensPerRecord: params.tokensPerRecord,
    codesPerGroup: params.codesPerGroup,
    groups: params.groups,
    bitsPerToken: bitsForCodes(params.codesPerGroup),
    recordCount,
  };
  validateHeader(header);
  return header;
}

/** Bytes of packed ids in one record: ceil(T * b / 8). */
export function recordPayloadBytes(header: TokenStreamHeader): number {
  return packedByteLength(header.tokensPerRecord, header.bitsPerToken);
}

/** Bytes of one record, packed ids plus CRC: ceil(T * b / 8) + 4. */
export function recordStride(header: TokenStreamHeader): number {
  return recordPayloadBytes(header) + RECORD_CRC_BYTES;
}

/** Exact length of the whole stream: 64 + N * stride. */
export function tokenStreamByteLength(header: TokenStreamHeader): number {
  return TOKEN_STREAM_HEADER_BYTES + header.recordCount * recordStride(header);
}

/**
 * Where record `index` lies in the stream. For an HTTP Range request ask for
 * `bytes=${offset}-${offset + length - 1}` (Range is inclusive).
 */
export function recordByteRange(header: TokenStreamHeader, index: number): ByteRange {
  checkRecordIndex(header, index);
  const stride = recordStride(header);
  return { offset: TOKEN_STREAM_HEADER_BYTES + index * stride, length: stride };
}

/**
 * Checks a token array against the params: a whole number of records of T ids, each an integer
 * in [0, K). Returns the header of the stream those tokens make.
 */
export function validateTokens(
  params: TokenStreamParams,
  tokens: ArrayLike<number>,
): TokenStreamHeader {
  const header = headerForTokens(params, tokens.length);
  const { tokensPerRecord, codesPerGroup, recordCount } = header;
  for (let r = 0; r < recordCount; r++) {
    for (let t = 0; t < tokensPerRecord; t++) {
      checkTokenId(tokens[r * tokensPerRecord + t], codesPerGroup, r, t);
    }
  }
  return header;
}

/** The header for `tokenCount` ids, which must be a whole number of records. */
function headerForTokens(params: TokenStreamParams, tokenCount: number): TokenStreamHeader {
  const perRecord = params.tokensPerRecord;
  checkIntegerIn(perRecord, 1, MAX_TOKENS_PER_RECORD, "tokensPerRecord", "bad-tokens-per-record");
  if (tokenCount % perRecord !== 0) {
    throw new FormatError(
      FORMAT,
      "bad-token-count",
      `${tokenCount} token ids are not a whole number of records of ${perRecord}`,
    );
  }
  return makeTokenStreamHeader(params, tokenCount / perRecord);
}

// ---------------------------------------------------------------------------------------------
// Writing

/** The 64 header bytes, CRC included. */
export function encodeHeader(header: TokenStreamHeader): Uint8Array {
  validateHeader(header);
  const bytes = new Uint8Array(TOKEN_STREAM_HEADER_BYTES);
  const view = viewOf(bytes);
  bytes.set(MAGIC_BYTES, 0);
  view.setUint16(OFFSET.version, header.version, true);
  view.setUint16(OFFSET.headerSize, TOKEN_STREAM_HEADER_BYTES, true);
  bytes.set(hexToBytes(header.tokenizerHash), OFFSET.tokenizerHash);
  view.setUint32(OFFSET.tokensPerRecord, header.tokensPerRecord, true);
  view.setUint32(OFFSET.codesPerGroup, header.codesPerGroup, true);
  view.setUint32(OFFSET.groups, header.groups, true);
  view.setUint8(OFFSET.bitsPerToken, header.bitsPerToken);
  view.setUint32(OFFSET.recordCount, header.recordCount, true);
  view.setUint32(OFFSET.crc, crc32(bytes.subarray(0, OFFSET.crc)), true);
  return bytes;
}

/**
 * The bytes of record `index` (T ids): packed ids then their CRC. With {@link encodeHeader} this
 * lets a server stream a token stream record by record.
 */
export function encodeRecord(
  header: TokenStreamHeader,
  index: number,
  ids: ArrayLike<number>,
): Uint8Array {
  validateHeader(header);
  checkRecordIndex(header, index);
  const out = new Uint8Array(recordStride(header));
  encodeRecordInto(header, index, ids, out, 0);
  return out;
}

/** A whole stream from N*T ids, record after record. */
export function writeTokenStream(
  params: TokenStreamParams,
  tokens: Uint32Array | Int32Array,
): Uint8Array {
  const header = headerForTokens(params, tokens.length);
  const perRecord = header.tokensPerRecord;
  const stride = recordStride(header);
  const out = new Uint8Array(tokenStreamByteLength(header));
  out.set(encodeHeader(header), 0);
  for (let i = 0; i < header.recordCount; i++) {
    const ids = tokens.subarray(i * perRecord, (i + 1) * perRecord);
    encodeRecordInto(header, i, ids, out, TOKEN_STREAM_HEADER_BYTES + i * stride);
  }
  return out;
}

function encodeRecordInto(
  header: TokenStreamHeader,
  index: number,
  ids: ArrayLike<number>,
  out: Uint8Array,
  offset: number,
): void {
  if (ids.length !== header.tokensPerRecord) {
    throw new FormatError(
      FORMAT,
      "bad-token-count",
      `record ${index} has ${ids.length} token ids; tokensPerRecord is ${header.tokensPerRecord}`,
    );
  }
  for (let t = 0; t < ids.length; t++) checkTokenId(ids[t], header.codesPerGroup, index, t);
  const payloadBytes = recordPayloadBytes(header);
  packBits(ids, header.bitsPerToken, out, offset);
  const payload = out.subarray(offset, offset + payloadBytes);
  viewOf(out).setUint32(offset + payloadBytes, recordCrc(index, payload), true);
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Reads and checks the header from the first 64 bytes of `bytes` (anything after them is
 * ignored, so a Range-fetched prefix will do). Magic, version and header size are checked
 * before the CRC because a future version may put its CRC elsewhere; then the CRC; then every
 * other field.
 */
export function readTokenStreamHeader(bytes: Uint8Array): TokenStreamHeader {
  checkPreamble(bytes);
  if (bytes.length < TOKEN_STREAM_HEADER_BYTES) {
    throw new FormatError(
      FORMAT,
      "truncated",
      `stream has ${bytes.length} bytes; the header alone needs ${TOKEN_STREAM_HEADER_BYTES}`,
    );
  }
  const view = viewOf(bytes);
  const storedCrc = view.getUint32(OFFSET.crc, true);
  const actualCrc = crc32(bytes.subarray(0, OFFSET.crc));
  if (storedCrc !== actualCrc) {
    throw new FormatError(
      FORMAT,
      "bad-header-crc",
      `header CRC-32 is ${hex32(storedCrc)} but bytes 0..59 give ${hex32(actualCrc)}`,
    );
  }
  const reserved = bytes.subarray(OFFSET.reserved, OFFSET.recordCount);
  if (reserved.some((b) => b !== 0)) {
    throw new FormatError(
      FORMAT,
      "reserved-nonzero",
      `reserved header bytes 53..55 must be zero, found [${reserved.join(", ")}]`,
    );
  }
  const header: TokenStreamHeader = {
    version: TOKEN_STREAM_VERSION,
    tokenizerHash: bytesToHex(bytes.subarray(OFFSET.tokenizerHash, OFFSET.tokensPerRecord)),
    tokensPerRecord: view.getUint32(OFFSET.tokensPerRecord, true),
    codesPerGroup: view.getUint32(OFFSET.codesPerGroup, true),
    groups: view.getUint32(OFFSET.groups, true),
    bitsPerToken: view.getUint8(OFFSET.bitsPerToken),
    recordCount: view.getUint32(OFFSET.recordCount, true),
  };
  validateHeader(header);
  return header;
}

/** Reads a whole stream, checking everything. */
export function readTokenStream(bytes: Uint8Array): DecodedTokens {
  const header = readTokenStreamHeader(bytes);
  checkStreamLength(header, bytes.length);
  const perRecord = header.tokensPerRecord;
  const stride = recordStride(header);
  const tokens = new Uint32Array(header.recordCount * perRecord);
  for (let i = 0; i < header.recordCount; i++) {
    const start = TOKEN_STREAM_HEADER_BYTES + i * stride;
    decodeRecordInto(header, bytes.subarray(start, start + stride), i, tokens, i * perRecord);
  }
  return { header, tokens };
}

/**
 * Reads one record fetched on its own (see {@link recordByteRange}): `recordBytes` must be
 * exactly that record's bytes, and `index` its position, which its CRC covers.
 */
export function readRecord(
  header: TokenStreamHeader,
  recordBytes: Uint8Array,
  index: number,
): Uint32Array {
  validateHeader(header);
  checkRecordIndex(header, index);
  const stride = recordStride(header);
  if (recordBytes.length !== stride) {
    throw new FormatError(
      FORMAT,
      "bad-record-length",
      `record ${index} has ${recordBytes.length} bytes; records of this stream have ${stride}`,
    );
  }
  return decodeRecordInto(header, recordBytes, index, new Uint32Array(header.tokensPerRecord), 0);
}

/**
 * Decodes a stream that arrives in chunks split anywhere. It holds at most the header and one
 * record, and allocates the record buffer only once the header (and so its size) is verified.
 * After it throws, every later call throws the same error.
 */
export class TokenStreamDecoder {
  #headerBytes = new Uint8Array(TOKEN_STREAM_HEADER_BYTES);
  #headerFill = 0;
  #header: TokenStreamHeader | undefined;
  #record = new Uint8Array(0);
  #recordFill = 0;
  #recordsDone = 0;
  #failure: unknown;

  /** The verified header, or undefined until its 64 bytes have arrived. */
  get header(): TokenStreamHeader | undefined {
    return this.#header;
  }

  /** Records decoded so far. */
  get recordsDecoded(): number {
    return this.#recordsDone;
  }

  /** Feeds the next chunk; returns the records it completed, in order. */
  push(chunk: Uint8Array): Uint32Array[] {
    return this.#guard(() => this.#push(chunk));
  }

  /**
   * Declares the end of the stream: throws unless the header and all its records arrived.
   * Returns the header.
   */
  finish(): TokenStreamHeader {
    return this.#guard(() => this.#finish());
  }

  #guard<R>(step: () => R): R {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      return step();
    } catch (error) {
      this.#failure = error;
      throw error;
    }
  }

  #push(chunk: Uint8Array): Uint32Array[] {
    let p = this.#header === undefined ? this.#fillHeader(chunk) : 0;
    const header = this.#header;
    const records: Uint32Array[] = [];
    if (header === undefined) return records;
    const stride = this.#record.length;
    while (p < chunk.length) {
      if (this.#recordsDone === header.recordCount) {
        throw new FormatError(
          FORMAT,
          "trailing-bytes",
          `stream continues after its last record (${header.recordCount} records)`,
        );
      }
      if (this.#recordFill === 0 && chunk.length - p >= stride) {
        // A whole record inside the chunk: decode it in place, without copying.
        records.push(this.#decodeNext(header, chunk.subarray(p, p + stride)));
        p += stride;
        continue;
      }
      const take = Math.min(stride - this.#recordFill, chunk.length - p);
      this.#record.set(chunk.subarray(p, p + take), this.#recordFill);
      this.#recordFill += take;
      p += take;
      if (this.#recordFill === stride) {
        this.#recordFill = 0;
        records.push(this.#decodeNext(header, this.#record));
      }
    }
    return records;
  }

  /** Copies header bytes from the chunk; returns how many it used. */
  #fillHeader(chunk: Uint8Array): number {
    const take = Math.min(TOKEN_STREAM_HEADER_BYTES - this.#headerFill, chunk.length);
    this.#headerBytes.set(chunk.subarray(0, take), this.#headerFill);
    this.#headerFill += take;
    const received = this.#headerBytes.subarray(0, this.#headerFill);
    if (this.#headerFill < TOKEN_STREAM_HEADER_BYTES) {
      checkPreamble(received); // fail on a wrong magic or version without waiting for more
      return take;
    }
    const header = readTokenStreamHeader(received);
    this.#record = new Uint8Array(recordStride(header));
    this.#header = header;
    return take;
  }

  #decodeNext(header: TokenStreamHeader, recordBytes: Uint8Array): Uint32Array {
    const ids = new Uint32Array(header.tokensPerRecord);
    decodeRecordInto(header, recordBytes, this.#recordsDone, ids, 0);
    this.#recordsDone++;
    return ids;
  }

  #finish(): TokenStreamHeader {
    if (this.#header === undefined) {
      // Reports a wrong magic or version if those arrived, else the truncation.
      return readTokenStreamHeader(this.#headerBytes.subarray(0, this.#headerFill));
    }
    const { recordCount } = this.#header;
    if (this.#recordsDone < recordCount) {
      throw new FormatError(
        FORMAT,
        "truncated",
        `stream ended after ${this.#recordsDone} of ${recordCount} records` +
          (this.#recordFill > 0 ? ` and ${this.#recordFill} bytes of the next` : ""),
      );
    }
    return this.#header;
  }
}

/**
 * Decodes a byte stream (e.g. `response.body`) record by record. Pass your own decoder to read
 * its `header`. The generator returns the header when the stream is complete; if the consumer
 * stops early or the stream is bad, the source is cancelled.
 */
export async function* readTokenStreamRecords(
  stream: ReadableStream<Uint8Array>,
  decoder = new TokenStreamDecoder(),
): AsyncGenerator<Uint32Array, TokenStreamHeader, undefined> {
  const reader = stream.getReader();
  let complete = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* decoder.push(value);
    }
    const header = decoder.finish();
    complete = true;
    return header;
  } finally {
    if (complete) reader.releaseLock();
    // The original error, if any, is what the caller needs; a failing cancel adds nothing.
    else await reader.cancel().catch(() => undefined);
  }
}

function decodeRecordInto(
  header: TokenStreamHeader,
  recordBytes: Uint8Array,
  index: number,
  out: Uint32Array,
  outOffset: number,
): Uint32Array {
  const { tokensPerRecord, bitsPerToken, codesPerGroup } = header;
  const payloadBytes = recordPayloadBytes(header);
  const payload = recordBytes.subarray(0, payloadBytes);
  const storedCrc = viewOf(recordBytes).getUint32(payloadBytes, true);
  const actualCrc = recordCrc(index, payload);
  if (storedCrc !== actualCrc) {
    throw new FormatError(
      FORMAT,
      "bad-record-crc",
      `record ${index}: stored CRC-32 is ${hex32(storedCrc)} but its index and ids give ${hex32(actualCrc)}`,
    );
  }
  if (!paddingIsZero(payload, tokensPerRecord, bitsPerToken)) {
    throw new FormatError(FORMAT, "nonzero-padding", `record ${index}: padding bits are not zero`);
  }
  unpackBits(payload, tokensPerRecord, bitsPerToken, out, outOffset);
  // With K a power of two every b-bit value is a valid id; otherwise look for ids >= K.
  if (codesPerGroup !== 2 ** bitsPerToken) {
    for (let t = 0; t < tokensPerRecord; t++) {
      checkTokenId(out[outOffset + t], codesPerGroup, index, t);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks and helpers

const RECORD_INDEX_BYTES = new Uint8Array(4);

/** CRC-32 of the record index (u32 LE) followed by the packed ids. */
function recordCrc(index: number, payload: Uint8Array): number {
  viewOf(RECORD_INDEX_BYTES).setUint32(0, index, true);
  return crc32(payload, crc32(RECORD_INDEX_BYTES));
}

/** Checks magic, version and header size as far as `bytes` reaches. */
function checkPreamble(bytes: Uint8Array): void {
  const magicPart = bytes.subarray(0, MAGIC_BYTES.length);
  if (magicPart.some((b, i) => b !== MAGIC_BYTES[i])) {
    throw new FormatError(
      FORMAT,
      "bad-magic",
      `not a token stream: it starts with [${[...magicPart].join(", ")}], not "${TOKEN_STREAM_MAGIC}"`,
    );
  }
  const view = viewOf(bytes);
  if (bytes.length >= OFFSET.version + 2) {
    const version = view.getUint16(OFFSET.version, true);
    if (version !== TOKEN_STREAM_VERSION) {
      throw new FormatError(
        FORMAT,
        "unsupported-version",
        `token stream version ${version} is not supported (this reader reads version ${TOKEN_STREAM_VERSION})`,
      );
    }
  }
  if (bytes.length >= OFFSET.headerSize + 2) {
    const headerSize = view.getUint16(OFFSET.headerSize, true);
    if (headerSize !== TOKEN_STREAM_HEADER_BYTES) {
      throw new FormatError(
        FORMAT,
        "bad-header-size",
        `header size is ${headerSize}; version 1 headers are ${TOKEN_STREAM_HEADER_BYTES} bytes`,
      );
    }
  }
}

/** Every header field against the limits of the spec. */
function validateHeader(header: TokenStreamHeader): void {
  if (header.version !== TOKEN_STREAM_VERSION) {
    throw new FormatError(
      FORMAT,
      "unsupported-version",
      `token stream version ${header.version} is not supported (only ${TOKEN_STREAM_VERSION})`,
    );
  }
  if (typeof header.tokenizerHash !== "string" || !HASH_PATTERN.test(header.tokenizerHash)) {
    throw new FormatError(
      FORMAT,
      "bad-tokenizer-hash",
      `tokenizerHash must be 64 lowercase hex digits, got ${JSON.stringify(header.tokenizerHash)}`,
    );
  }
  const { tokensPerRecord, groups } = header;
  checkIntegerIn(
    tokensPerRecord,
    1,
    MAX_TOKENS_PER_RECORD,
    "tokensPerRecord",
    "bad-tokens-per-record",
  );
  const bits = bitsForCodes(header.codesPerGroup);
  if (!Number.isInteger(groups) || groups < 1 || groups > tokensPerRecord) {
    throw new FormatError(
      FORMAT,
      "bad-groups",
      `groups is ${groups}; it must be an integer in [1, tokensPerRecord = ${tokensPerRecord}]`,
    );
  }
  if (tokensPerRecord % groups !== 0) {
    throw new FormatError(
      FORMAT,
      "bad-groups",
      `groups ${groups} does not divide tokensPerRecord ${tokensPerRecord}`,
    );
  }
  if (header.bitsPerToken !== bits) {
    throw new FormatError(
      FORMAT,
      "bits-mismatch",
      `bitsPerToken is ${header.bitsPerToken} but codesPerGroup ${header.codesPerGroup} needs ceil(log2 K) = ${bits}`,
    );
  }
  checkIntegerIn(header.recordCount, 0, MAX_RECORD_COUNT, "recordCount", "bad-record-count");
}

function checkIntegerIn(
  value: number,
  min: number,
  max: number,
  field: string,
  code: string,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FormatError(
      FORMAT,
      code,
      `${field} is ${value}; it must be an integer in [${min}, ${max}]`,
    );
  }
}

function checkStreamLength(header: TokenStreamHeader, actual: number): void {
  const expected = tokenStreamByteLength(header);
  if (actual === expected) return;
  const declared =
    `the header declares ${header.recordCount} records of ${recordStride(header)} bytes ` +
    `(${expected} bytes in all)`;
  if (actual < expected) {
    throw new FormatError(FORMAT, "truncated", `${declared} but the stream has ${actual} bytes`);
  }
  throw new FormatError(
    FORMAT,
    "trailing-bytes",
    `${declared} but the stream has ${actual} bytes: ${actual - expected} extra after the last record`,
  );
}

function checkRecordIndex(header: TokenStreamHeader, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= header.recordCount) {
    throw new FormatError(
      FORMAT,
      "record-index-out-of-range",
      `record index ${index} is outside [0, ${header.recordCount}) of this stream`,
    );
  }
}

function checkTokenId(id: number, codesPerGroup: number, record: number, token: number): void {
  // `>>> 0` maps negatives, fractions and NaN to a different number.
  if (id >>> 0 !== id || id >= codesPerGroup) {
    throw new FormatError(
      FORMAT,
      "token-out-of-range",
      `record ${record}, token ${token}: id ${id} is not an integer in [0, ${codesPerGroup})`,
    );
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

function hexToBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
