/**
 * safetensors reading and writing: whole buffers, and byte ranges for a Worker that fetches one
 * tensor (or a few rows of one) with an R2 range request instead of the whole file.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON header (padded with spaces),
 * then the tensor data. Header entries are `{dtype, shape, data_offsets: [start, end]}` relative to
 * the first data byte, plus an optional `__metadata__` string-to-string map.
 *
 * Validation follows the Rust reference reader (header at most 100 MB, byte counts equal to
 * product(shape)·itemsize, tensors back to back from data offset 0 and covering the data exactly)
 * and adds what JSON.parse would otherwise hide: duplicate keys (it silently keeps the last one)
 * and `__proto__` names. Every failure is a FormatError with a stable code.
 *
 * Typed arrays are host-endian and safetensors is little-endian: every host this runs on (x86 and
 * ARM Node, Workers, browsers) is little-endian, so raw views are used without byte swapping.
 */

import { FormatError } from "../errors.ts";
import type { ByteRange } from "./byte-range.ts";

/** Bytes before the JSON header: the u64 header length. */
export const SAFETENSORS_PREFIX_BYTES = 8;
/** The reference implementation's limit on the header length (100 MB). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const ITEM_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

export type Dtype = keyof typeof ITEM_SIZES;
export const DTYPES = Object.freeze(Object.keys(ITEM_SIZES) as Dtype[]);

export type TensorArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

type TensorArrayConstructor = new (
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
) => TensorArray;

/** How each dtype's bytes are viewed. F16/BF16 are viewed as bits, then widened to float32. */
const RAW_VIEWS: Partial<Record<Dtype, TensorArrayConstructor>> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
  F64: Float64Array,
};

/** One tensor's header entry. `start`/`end` are absolute byte offsets in the file. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** `data_offsets` as written in the header: relative to the first data byte. */
  readonly dataOffsets: readonly [number, number];
  readonly start: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** `__metadata__` (empty when absent), in a null-prototype object. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors in file order. */
  readonly tensors: Map<string, TensorInfo>;
  /** Absolute offset of the first data byte: 8 + header length. */
  readonly dataStart: number;
  /** Absolute offset just past the last tensor: the file size the header implies. */
  readonly dataEnd: number;
}

export interface SafetensorsFile extends SafetensorsHeader {
  readonly bytes: Uint8Array;
}

/** A decoded tensor, and the writer's input. F16/BF16 data is a Float32Array. */
export interface Tensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorArray;
}

function fail(code: string, message: string): never {
  throw new FormatError("safetensors", code, message);
}

/** A name for messages: quoted, and cut short, since a hostile name can be megabytes long. */
function quote(name: string): string {
  const quoted = JSON.stringify(name);
  return quoted.length > 80 ? `${quoted.slice(0, 77)}..."` : quoted;
}

/** A JSON value for messages, cut short. */
function describe(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value); // a bigint or a cycle, from a caller of the writer
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isDtype(value: unknown): value is Dtype {
  // hasOwn, not `in`: "toString" or "constructor" must not count as dtypes.
  return typeof value === "string" && Object.hasOwn(ITEM_SIZES, value);
}

export function dtypeItemSize(dtype: Dtype): number {
  return ITEM_SIZES[dtype];
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** product(shape), refusing anything past 2^53 where the arithmetic would stop being exact. */
function elementCountOf(name: string, shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) {
    count *= dim;
    if (!Number.isSafeInteger(count)) {
      fail("too-large", `tensor ${quote(name)} has shape [${shape}]: too many elements`);
    }
  }
  return count;
}

function rejectProtoKey(key: string, where: string): void {
  // JSON.parse makes "__proto__" an own key, but copying it into an ordinary object would replace
  // that object's prototype; no real file needs the name, so refuse it outright.
  if (key === "__proto__") fail("forbidden-name", `${where} "__proto__" is not allowed`);
}

/** Code-point order (= UTF-8 byte order), the order Rust and Python sort names in. */
function compareCodePoints(a: string, b: string): number {
  for (let i = 0; i < a.length && i < b.length; i++) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16 <-> float32, bit-exact (subnormals, infinities, NaN payloads)

/** value / 2^shift (shift ≤ 24, value < 2^31), rounded to nearest, ties to even. */
function roundShift(value: number, shift: number): number {
  const floor = value >>> shift;
  const rest = value - (floor << shift);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (floor & 1) === 1) ? floor + 1 : floor;
}

function float16ToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return sign | 0x7f800000 | (mantissa << 13);
  if (exponent !== 0) return sign | ((exponent + 112) << 23) | (mantissa << 13);
  if (mantissa === 0) return sign;
  // Subnormal, mantissa·2^-24: a normal number in float32, so move the leading 1 to bit 10.
  const shift = Math.clz32(mantissa) - 21;
  return sign | ((113 - shift) << 23) | (((mantissa << shift) & 0x3ff) << 13);
}

function float32BitsToFloat16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) {
    // Keep the top of a NaN payload; if that is all zeros, set the quiet bit so it stays a NaN.
    return sign | 0x7c00 | (mantissa === 0 ? 0 : mantissa >>> 13 || 0x200);
  }
  const e = exponent - 112; // float16's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e > 0) return sign | roundShift((e << 23) | mantissa, 13); // a carry may round up to inf
  if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
  return sign | roundShift(mantissa | 0x800000, 14 - e); // subnormal (may round up to normal)
}

function float32BitsToBfloat16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const magnitude = x & 0x7fffffff;
  if (magnitude > 0x7f800000) {
    const truncated = x >>> 16;
    return (truncated & 0x7f) === 0 ? truncated | 0x40 : truncated; // stay a NaN
  }
  return sign | roundShift(magnitude, 16);
}

export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = float16ToFloat32Bits(bits[i]);
  return out;
}

export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  return out;
}

/** Round to nearest float16, ties to even; out of range gives ±inf. */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  return mapFloat32Bits(values, float32BitsToFloat16);
}

/** Round to nearest bfloat16, ties to even. */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  return mapFloat32Bits(values, float32BitsToBfloat16);
}

function mapFloat32Bits(values: Float32Array, convert: (bits: number) => number): Uint16Array {
  // Read the bits directly: going through a JS number could change a NaN's payload.
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding tensor bytes

/**
 * Turns the bytes of whole elements of `dtype` into a typed array: a view sharing `bytes`' memory
 * when it is aligned to the element size, a copy otherwise; F16/BF16 become a new Float32Array.
 * Use it for part of a tensor (see elementByteRange); decodeTensorBytes for a whole one.
 */
export function decodeElements(dtype: Dtype, bytes: Uint8Array): TensorArray {
  const size = ITEM_SIZES[dtype];
  if (bytes.length % size !== 0) {
    fail(
      "byte-length",
      `${bytes.length} bytes is not a whole number of ${dtype} elements (${size} bytes each)`,
    );
  }
  const View =
    RAW_VIEWS[dtype] ?? fail("unsupported-dtype", `${dtype} tensors have no typed-array decoding`);
  // A typed array's byte offset must be a multiple of its element size; new Uint8Array(bytes)
  // copies to offset 0 (bytes.slice() would not copy a Node Buffer).
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const view = new View(aligned.buffer, aligned.byteOffset, aligned.length / size);
  if (dtype === "F16") return float16ToFloat32(view as Uint16Array);
  if (dtype === "BF16") return bfloat16ToFloat32(view as Uint16Array);
  return view;
}

/** Decodes the complete bytes of one tensor (as fetched with tensorByteRange). */
export function decodeTensorBytes(info: TensorInfo, bytes: Uint8Array): TensorArray {
  const expected = info.end - info.start;
  if (bytes.length !== expected) {
    fail(
      "byte-length",
      `tensor ${quote(info.name)} has ${expected} bytes but ${bytes.length} were given`,
    );
  }
  return decodeElements(info.dtype, bytes);
}

/** Integer tensor data (I64 indices in PyTorch state dicts, say) as Int32Array, range-checked. */
export function toInt32Array(data: TensorArray, what = "tensor"): Int32Array {
  if (data instanceof Int32Array) return data;
  if (data instanceof Float32Array || data instanceof Float64Array) {
    fail("not-integer", `${what} holds floating-point values, not integers`);
  }
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const value = Number(data[i]);
    if (value < -0x80000000 || value > 0x7fffffff) {
      fail("int-out-of-range", `${what}[${i}] = ${data[i]} does not fit in a 32-bit integer`);
    }
    out[i] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** The header length N from the file's first 8 (or more) bytes. */
export function headerLengthFromPrefix(
  prefix: Uint8Array,
  maxHeaderBytes = SAFETENSORS_MAX_HEADER_BYTES,
): number {
  if (prefix.length < SAFETENSORS_PREFIX_BYTES) {
    fail("too-short", `the header length needs 8 bytes but only ${prefix.length} were given`);
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(maxHeaderBytes)) {
    fail(
      "header-too-large",
      `the header length is ${length} bytes, over the limit of ${maxHeaderBytes} bytes`,
    );
  }
  return Number(length);
}

const UTF8_DECODER = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

/**
 * Parses the N header bytes that follow the 8-byte prefix. Tensor ranges are absolute in the file.
 * With `fileSize`, also checks that the tensors lie inside the file and cover its data exactly.
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  options: { readonly fileSize?: number } = {},
): SafetensorsHeader {
  const { fileSize } = options;
  if (headerBytes.length > SAFETENSORS_MAX_HEADER_BYTES) {
    fail(
      "header-too-large",
      `the header is ${headerBytes.length} bytes, over the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`,
    );
  }
  const dataStart = SAFETENSORS_PREFIX_BYTES + headerBytes.length;
  if (fileSize !== undefined && !(Number.isSafeInteger(fileSize) && fileSize >= 0)) {
    fail("file-size", `fileSize must be a non-negative safe integer, got ${fileSize}`);
  }
  if (fileSize !== undefined && dataStart > fileSize) {
    fail(
      "header-length",
      `a header of ${headerBytes.length} bytes does not fit in a file of ${fileSize} bytes`,
    );
  }
  const header = decodeHeaderJson(headerBytes);
  let metadata: Readonly<Record<string, string>> = Object.freeze(Object.create(null));
  const entries: TensorInfo[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") metadata = readMetadata(value);
    else entries.push(readEntry(name, value, dataStart));
  }
  const ordered = checkBackToBack(entries, dataStart);
  const dataEnd = ordered.at(-1)?.end ?? dataStart;
  if (fileSize !== undefined) checkCoversFile(ordered, dataStart, dataEnd, fileSize);
  return {
    metadata,
    tensors: new Map(ordered.map((info) => [info.name, info])),
    dataStart,
    dataEnd,
  };
}

/** Parses a whole file held in memory. Tensors are read from it with readTensor. */
export function parseSafetensors(file: Uint8Array | ArrayBuffer): SafetensorsFile {
  const bytes = file instanceof Uint8Array ? file : new Uint8Array(file);
  const headerLength = headerLengthFromPrefix(bytes);
  if (SAFETENSORS_PREFIX_BYTES + headerLength > bytes.length) {
    fail(
      "header-length",
      `the header length is ${headerLength} bytes but the file has only ${bytes.length - SAFETENSORS_PREFIX_BYTES} bytes after the prefix`,
    );
  }
  const headerBytes = bytes.subarray(
    SAFETENSORS_PREFIX_BYTES,
    SAFETENSORS_PREFIX_BYTES + headerLength,
  );
  return { ...parseSafetensorsHeader(headerBytes, { fileSize: bytes.length }), bytes };
}

/** Decodes one tensor of a parsed file. Its data may share the file's memory (see decodeElements). */
export function readTensor(file: SafetensorsFile, name: string): Tensor {
  const info =
    file.tensors.get(name) ??
    fail("tensor-not-found", `no tensor named ${quote(name)} (the file has ${file.tensors.size})`);
  const data = decodeTensorBytes(info, file.bytes.subarray(info.start, info.end));
  return { dtype: info.dtype, shape: info.shape, data };
}

/** The bytes to fetch for a whole tensor. */
export function tensorByteRange(info: TensorInfo): ByteRange {
  return { offset: info.start, length: info.end - info.start };
}

/** The bytes to fetch for `count` consecutive elements (row-major) from `firstElement` on. */
export function elementByteRange(info: TensorInfo, firstElement: number, count: number): ByteRange {
  const valid =
    Number.isSafeInteger(firstElement) &&
    Number.isSafeInteger(count) &&
    firstElement >= 0 &&
    count >= 0 &&
    firstElement + count <= info.elementCount;
  if (!valid) {
    fail(
      "element-range",
      `elements [${firstElement}, ${firstElement} + ${count}) are not inside tensor ${quote(info.name)} of ${info.elementCount} elements`,
    );
  }
  const size = ITEM_SIZES[info.dtype];
  return { offset: info.start + firstElement * size, length: count * size };
}

function decodeHeaderJson(headerBytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = UTF8_DECODER.decode(headerBytes);
  } catch {
    fail("header-utf8", "the header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    fail("header-json", `the header is not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(header)) {
    fail("header-not-object", `the header must be a JSON object, got ${describe(header)}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    fail("duplicate-key", `the header has the key ${quote(duplicate)} twice in one object`);
  }
  return header;
}

/**
 * JSON.parse keeps the last of duplicate keys without a word, so a file could show one tensor to
 * this reader and another to a reader that keeps the first. Scan the raw text (already known to be
 * valid JSON) and return the first key that repeats within one object, escapes decoded.
 */
function findDuplicateKey(text: string): string | undefined {
  const objects: (Set<string> | null)[] = []; // one entry per open container; null for arrays
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = endOfString(text, i);
      const keys = objects.at(-1);
      if (expectKey && keys) {
        const raw = text.slice(i, end + 1);
        const key: string = raw.includes("\\") ? JSON.parse(raw) : raw.slice(1, -1);
        if (keys.has(key)) return key;
        keys.add(key);
      }
      expectKey = false;
      i = end;
    } else if (c === 0x7b /* { */) {
      objects.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      objects.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = objects.at(-1) != null;
    }
  }
  return undefined;
}

/** Index of the quote that closes the string opening at `start`. */
function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
  return i;
}

function readMetadata(value: unknown): Readonly<Record<string, string>> {
  if (!isPlainObject(value)) {
    fail("metadata-invalid", `__metadata__ must be an object of strings, got ${describe(value)}`);
  }
  const metadata: Record<string, string> = Object.create(null);
  for (const [key, item] of Object.entries(value)) {
    rejectProtoKey(key, "the __metadata__ key");
    if (typeof item !== "string") {
      fail(
        "metadata-invalid",
        `__metadata__[${quote(key)}] must be a string, got ${describe(item)}`,
      );
    }
    metadata[key] = item;
  }
  return Object.freeze(metadata);
}

function readEntry(name: string, value: unknown, dataStart: number): TensorInfo {
  rejectProtoKey(name, "the tensor name");
  if (!isPlainObject(value)) {
    fail(
      "entry-invalid",
      `tensor ${quote(name)} must be an object {dtype, shape, data_offsets}, got ${describe(value)}`,
    );
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isDtype(dtype)) {
    fail(
      "unknown-dtype",
      `tensor ${quote(name)} has dtype ${describe(dtype)}, not one of ${DTYPES.join(", ")}`,
    );
  }
  if (!isShape(shape)) {
    fail(
      "shape-invalid",
      `tensor ${quote(name)}: shape must be an array of non-negative safe integers, got ${describe(shape)}`,
    );
  }
  const [start, end] = readOffsets(name, offsets);
  const elementCount = elementCountOf(name, shape);
  const byteLength = elementCount * ITEM_SIZES[dtype];
  if (!Number.isSafeInteger(byteLength) || !Number.isSafeInteger(dataStart + end)) {
    fail("too-large", `tensor ${quote(name)} is too large: ${elementCount} ${dtype} elements`);
  }
  if (end - start !== byteLength) {
    fail(
      "size-mismatch",
      `tensor ${quote(name)}: ${dtype} of shape [${shape}] needs ${elementCount} × ${ITEM_SIZES[dtype]} = ${byteLength} bytes, but data_offsets [${start}, ${end}] hold ${end - start}`,
    );
  }
  return Object.freeze({
    name,
    dtype,
    shape: Object.freeze([...shape]),
    elementCount,
    dataOffsets: Object.freeze([start, end] as [number, number]),
    start: dataStart + start,
    end: dataStart + end,
  });
}

function readOffsets(name: string, offsets: unknown): [number, number] {
  if (
    Array.isArray(offsets) &&
    offsets.length === 2 &&
    offsets.every((o) => Number.isSafeInteger(o) && o >= 0) &&
    offsets[0] <= offsets[1]
  ) {
    return [offsets[0], offsets[1]];
  }
  fail(
    "offsets-invalid",
    `tensor ${quote(name)}: data_offsets must be [start, end] with 0 ≤ start ≤ end, got ${describe(offsets)}`,
  );
}

/** Sorts by offset and checks the reference reader's rule: back to back from data offset 0. */
function checkBackToBack(entries: TensorInfo[], dataStart: number): TensorInfo[] {
  const ordered = entries.toSorted((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 0; i < ordered.length; i++) {
    const info = ordered[i];
    const expected = i === 0 ? dataStart : ordered[i - 1].end;
    if (info.start < expected) {
      const previous = ordered[i - 1]; // i > 0 here: no start is below dataStart
      fail(
        "offsets-overlap",
        `tensor ${quote(info.name)} at data_offsets [${info.dataOffsets}] overlaps tensor ${quote(previous.name)} at [${previous.dataOffsets}]`,
      );
    }
    if (info.start > expected) {
      fail(
        "offsets-gap",
        `${info.start - expected} bytes before tensor ${quote(info.name)} (data_offsets [${info.dataOffsets}]) belong to no tensor; tensors must be stored back to back from offset 0`,
      );
    }
  }
  return ordered;
}

function checkCoversFile(
  ordered: TensorInfo[],
  dataStart: number,
  dataEnd: number,
  fileSize: number,
): void {
  const available = fileSize - dataStart;
  if (dataEnd > fileSize) {
    const last = ordered[ordered.length - 1]; // back to back: only the last one can stick out
    fail(
      "offsets-out-of-range",
      `tensor ${quote(last.name)} ends at data offset ${last.dataOffsets[1]}, but the file has only ${available} data bytes`,
    );
  }
  if (dataEnd < fileSize) {
    fail(
      "trailing-data",
      `the last ${fileSize - dataEnd} of the file's ${available} data bytes belong to no tensor`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Writes a safetensors file: tensors sorted by name (code-point order) and stored back to back,
 * header padded with spaces so the data starts at a multiple of 8, `__metadata__` first and only
 * when non-empty. The data type must match the dtype: Float32Array for F32 (and for F16/BF16,
 * rounded to nearest even), Uint8Array for U8/BOOL, BigInt64Array for I64, and so on.
 */
export function writeSafetensors(
  tensors: Readonly<Record<string, Tensor>> | ReadonlyMap<string, Tensor>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array<ArrayBuffer> {
  const named = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).toSorted(
    ([a], [b]) => compareCodePoints(a, b),
  );
  const blobs = named.map(([name, tensor]) => encodeTensor(name, tensor));
  const fields = metadataField(metadata);
  let offset = 0;
  named.forEach(([name, { dtype, shape }], i) => {
    const end = offset + blobs[i].length;
    fields.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  });
  const headerText = UTF8_ENCODER.encode(`{${fields.join(",")}}`);
  const headerLength = Math.ceil(headerText.length / 8) * 8;
  const dataStart = SAFETENSORS_PREFIX_BYTES + headerLength;
  const out = new Uint8Array(dataStart + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(headerText, SAFETENSORS_PREFIX_BYTES);
  out.fill(0x20, SAFETENSORS_PREFIX_BYTES + headerText.length, dataStart);
  let position = dataStart;
  for (const blob of blobs) {
    out.set(blob, position);
    position += blob.length;
  }
  return out;
}

/** The `"__metadata__":{...}` header field (keys sorted), or nothing when there is no metadata. */
function metadataField(metadata: Readonly<Record<string, string>>): string[] {
  const entries = Object.entries(metadata).toSorted(([a], [b]) => compareCodePoints(a, b));
  if (entries.length === 0) return [];
  for (const [key, value] of entries) {
    rejectProtoKey(key, "the __metadata__ key");
    if (typeof value !== "string") {
      fail(
        "metadata-invalid",
        `__metadata__[${quote(key)}] must be a string, got ${describe(value)}`,
      );
    }
  }
  const body = entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",");
  return [`"__metadata__":{${body}}`];
}

function encodeTensor(name: string, { dtype, shape, data }: Tensor): Uint8Array {
  rejectProtoKey(name, "the tensor name");
  if (name === "__metadata__") fail("forbidden-name", `a tensor cannot be named "__metadata__"`);
  if (!isDtype(dtype)) fail("unknown-dtype", `tensor ${quote(name)} has dtype ${describe(dtype)}`);
  if (!isShape(shape)) {
    fail(
      "shape-invalid",
      `tensor ${quote(name)}: shape must be an array of non-negative safe integers, got ${describe(shape)}`,
    );
  }
  const converted = dtype === "F16" || dtype === "BF16";
  const Input = converted
    ? Float32Array
    : (RAW_VIEWS[dtype] ?? fail("unsupported-dtype", `${dtype} tensors cannot be written`));
  if (!(data instanceof Input)) {
    fail(
      "data-type",
      `tensor ${quote(name)}: ${dtype} data must be a ${Input.name}, got ${data?.constructor?.name}`,
    );
  }
  const elementCount = elementCountOf(name, shape);
  if (data.length !== elementCount) {
    fail(
      "size-mismatch",
      `tensor ${quote(name)}: shape [${shape}] has ${elementCount} elements but the data has ${data.length}`,
    );
  }
  const stored = converted
    ? (dtype === "F16" ? float32ToFloat16 : float32ToBfloat16)(data as Float32Array)
    : data;
  return new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
}
