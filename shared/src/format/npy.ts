/**
 * NumPy .npy files: numeric little-endian arrays in C order.
 *
 * Writing produces format 1.0 byte for byte as `numpy.save` does (numpy >= 1.24: header padded
 * with spaces to a multiple of 64 bytes, including the spare space numpy leaves for growing the
 * first axis). Reading accepts formats 1.0, 2.0 and 3.0 and checks every size against the bytes
 * present before allocating. Typed arrays are little-endian on every platform JavaScript runs on,
 * so array bytes are copied as they are.
 */

import { FormatError } from "../errors.ts";

type NpyDataOf = {
  "<f4": Float32Array;
  "<f8": Float64Array;
  "|i1": Int8Array;
  "|u1": Uint8Array;
  "<i2": Int16Array;
  "<u2": Uint16Array;
  "<i4": Int32Array;
  "<u4": Uint32Array;
  "<i8": BigInt64Array;
  "<u8": BigUint64Array;
};

/** The dtypes supported, spelled as numpy spells them in headers. */
export type NpyDtype = keyof NpyDataOf;

/** Typed arrays that can be written, each mapping to one dtype. */
export type NpyData = NpyDataOf[NpyDtype];

/** A decoded array; `dtype` tells which typed array `data` is. */
export type NpyArray = {
  [D in NpyDtype]: { dtype: D; shape: number[]; data: NpyDataOf[D] };
}[NpyDtype];

type TypedArrayConstructor<T> = { new (length: number): T; readonly BYTES_PER_ELEMENT: number };

const CONSTRUCTORS: { [D in NpyDtype]: TypedArrayConstructor<NpyDataOf[D]> } = {
  "<f4": Float32Array,
  "<f8": Float64Array,
  "|i1": Int8Array,
  "|u1": Uint8Array,
  "<i2": Int16Array,
  "<u2": Uint16Array,
  "<i4": Int32Array,
  "<u4": Uint32Array,
  "<i8": BigInt64Array,
  "<u8": BigUint64Array,
};

/** Spellings numpy may also use for one-byte types (byte order does not apply to them). */
const DTYPE_ALIASES: Record<string, NpyDtype> = { "<i1": "|i1", "<u1": "|u1" };

const FORMAT = "npy";
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** numpy pads the preamble (magic, version, length, header) to a multiple of this. */
const ALIGN = 64;
/** numpy leaves room for the first axis to grow to this many digits without moving the data. */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** Headers are a short dict; anything larger is not a file this reader should trust. */
export const NPY_MAX_HEADER_BYTES = 65536;
/** numpy 2 allows 64 dimensions, numpy 1 allows 32. */
export const NPY_MAX_DIMS = 64;

// ---------------------------------------------------------------------------------------------
// Writing

/** The dtype a typed array is written as. */
export function npyDtypeOf(data: NpyData): NpyDtype {
  for (const dtype of Object.keys(CONSTRUCTORS) as NpyDtype[]) {
    if (data instanceof CONSTRUCTORS[dtype]) return dtype;
  }
  throw new FormatError(FORMAT, "unsupported-dtype", "data is not a supported typed array");
}

/** A .npy file (format 1.0, C order) holding `data` with the given shape. */
export function writeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  checkShape(shape);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new FormatError(
      FORMAT,
      "length-mismatch",
      `shape (${shape.join(", ")}) holds ${count} elements but the data has ${data.length}`,
    );
  }
  const header = encodeHeader(npyDtypeOf(data), shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/** Magic, version 1.0, header length and the header dict padded exactly as numpy pads it. */
function encodeHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  let dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${pythonTuple(shape)}, }`;
  if (shape.length > 0) dict += " ".repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  const prefixBytes = MAGIC.length + 2 + 2;
  const unpadded = dict.length + 1; // the dict and its final newline
  const padding = ALIGN - ((prefixBytes + unpadded) % ALIGN); // 1..64, as numpy computes it
  const headerLength = unpadded + padding;
  const text = new TextEncoder().encode(`${dict}${" ".repeat(padding)}\n`);
  const bytes = new Uint8Array(prefixBytes + headerLength);
  bytes.set([...MAGIC, 1, 0, headerLength & 0xff, headerLength >>> 8], 0);
  bytes.set(text, prefixBytes);
  return bytes;
}

function pythonTuple(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

function checkShape(shape: readonly number[]): void {
  if (shape.length > NPY_MAX_DIMS) {
    throw new FormatError(
      FORMAT,
      "bad-shape",
      `shape has ${shape.length} dimensions; at most ${NPY_MAX_DIMS} are supported`,
    );
  }
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new FormatError(
        FORMAT,
        "bad-shape",
        `shape (${shape.join(", ")}) has ${dim}, which is not a non-negative integer`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Reads a .npy file (format 1.0, 2.0 or 3.0) of a supported dtype in C order. */
export function readNpy(bytes: Uint8Array): NpyArray {
  const { headerStart, headerLength } = readPreamble(bytes);
  const dataStart = headerStart + headerLength;
  const { descr, fortranOrder, shape } = parseHeaderDict(bytes.subarray(headerStart, dataStart));
  const dtype = checkDtype(descr);
  if (fortranOrder) {
    throw new FormatError(
      FORMAT,
      "fortran-order",
      "array is in Fortran order; save it in C order (np.ascontiguousarray) instead",
    );
  }
  checkShape(shape);
  const Constructor = CONSTRUCTORS[dtype] as TypedArrayConstructor<NpyData>;
  const count = checkDataLength(shape, Constructor.BYTES_PER_ELEMENT, bytes.length - dataStart);
  const data = new Constructor(count);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart));
  return { dtype, shape, data } as NpyArray;
}

function readPreamble(bytes: Uint8Array): { headerStart: number; headerLength: number } {
  const magicPart = bytes.subarray(0, MAGIC.length);
  if (magicPart.length < MAGIC.length || magicPart.some((b, i) => b !== MAGIC[i])) {
    throw new FormatError(
      FORMAT,
      "bad-magic",
      'not a .npy file: it does not start with "\\x93NUMPY"',
    );
  }
  if (bytes.length < 8) {
    throw new FormatError(
      FORMAT,
      "truncated",
      `file has ${bytes.length} bytes, too few for a header`,
    );
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw new FormatError(
      FORMAT,
      "unsupported-version",
      `.npy format ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`,
    );
  }
  // Format 1.0 has a u16 header length, 2.0 and 3.0 a u32.
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.length < headerStart) {
    throw new FormatError(
      FORMAT,
      "truncated",
      `file has ${bytes.length} bytes, too few for a header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > NPY_MAX_HEADER_BYTES) {
    throw new FormatError(
      FORMAT,
      "header-too-large",
      `header claims ${headerLength} bytes; at most ${NPY_MAX_HEADER_BYTES} are accepted`,
    );
  }
  if (headerStart + headerLength > bytes.length) {
    throw new FormatError(
      FORMAT,
      "truncated",
      `header claims ${headerLength} bytes but only ${bytes.length - headerStart} follow the preamble`,
    );
  }
  return { headerStart, headerLength };
}

type HeaderDict = { descr: string; fortranOrder: boolean; shape: number[] };

/**
 * Parses the header: a Python dict literal with exactly the keys 'descr', 'fortran_order' and
 * 'shape', then only whitespace. A small strict parser rather than anything like eval.
 */
function parseHeaderDict(header: Uint8Array): HeaderDict {
  const text = asciiText(header);
  const parser = new DictParser(text);
  const entries = parser.parseDict();
  parser.expectEnd();
  const keys = [...entries.keys()].sort().join(", ");
  if (keys !== "descr, fortran_order, shape") {
    throw badHeader(`keys are [${keys}], not exactly descr, fortran_order and shape`);
  }
  const descr = entries.get("descr");
  const fortranOrder = entries.get("fortran_order");
  const shape = entries.get("shape");
  if (typeof descr !== "string") throw badHeader("'descr' is not a string");
  if (typeof fortranOrder !== "boolean") throw badHeader("'fortran_order' is not True or False");
  if (!Array.isArray(shape)) throw badHeader("'shape' is not a tuple of integers");
  return { descr, fortranOrder, shape };
}

function asciiText(header: Uint8Array): string {
  const nonAscii = header.findIndex((b) => b > 0x7e || (b < 0x20 && b !== 0x0a && b !== 0x09));
  if (nonAscii >= 0) {
    throw badHeader(`header byte ${nonAscii} is ${header[nonAscii]}, not printable ASCII`);
  }
  return new TextDecoder().decode(header);
}

type PyValue = string | boolean | number[];

/** Recursive-descent parser for the subset of Python literals that .npy headers use. */
class DictParser {
  readonly #text: string;
  #pos = 0;

  constructor(text: string) {
    this.#text = text;
  }

  parseDict(): Map<string, PyValue> {
    const entries = new Map<string, PyValue>();
    this.#expect("{");
    while (this.#peek() !== "}") {
      const key = this.#parseString();
      if (entries.has(key)) throw badHeader(`key '${key}' appears twice`);
      this.#expect(":");
      entries.set(key, this.#parseValue(key));
      if (this.#peek() !== "}") this.#expect(",");
    }
    this.#expect("}");
    return entries;
  }

  expectEnd(): void {
    this.#skipSpace();
    if (this.#pos < this.#text.length) {
      throw badHeader(`unexpected ${JSON.stringify(this.#text[this.#pos])} after the dict`);
    }
  }

  #parseValue(key: string): PyValue {
    const c = this.#peek();
    if (c === "'" || c === '"') return this.#parseString();
    if (c === "(") return this.#parseTuple();
    if (c === "[" && key === "descr") {
      throw new FormatError(FORMAT, "unsupported-dtype", "structured dtypes are not supported");
    }
    for (const [word, value] of [
      ["True", true],
      ["False", false],
    ] as const) {
      if (this.#text.startsWith(word, this.#pos)) {
        this.#pos += word.length;
        return value;
      }
    }
    throw badHeader(`value of '${key}' at character ${this.#pos} is not a supported literal`);
  }

  #parseString(): string {
    const quote = this.#peek();
    if (quote !== "'" && quote !== '"')
      throw badHeader(`expected a string at character ${this.#pos}`);
    const end = this.#text.indexOf(quote, this.#pos + 1);
    if (end < 0) throw badHeader(`string at character ${this.#pos} is not closed`);
    const value = this.#text.slice(this.#pos + 1, end);
    if (value.includes("\\")) throw badHeader("escapes in strings are not supported");
    this.#pos = end + 1;
    return value;
  }

  /** `()`, `(n,)` or `(a, b, ...)` with an optional trailing comma; `(n)` is not a tuple. */
  #parseTuple(): number[] {
    this.#expect("(");
    const items: number[] = [];
    let sawComma = false;
    while (this.#peek() !== ")") {
      items.push(this.#parseInteger());
      if (this.#peek() === ")") break;
      this.#expect(",");
      sawComma = true;
    }
    this.#expect(")");
    if (items.length === 1 && !sawComma) throw badHeader("'shape' is (n), not the tuple (n,)");
    return items;
  }

  #parseInteger(): number {
    const digits = /^[0-9]+/.exec(this.#text.slice(this.#pos, this.#pos + 32))?.[0];
    if (digits === undefined) throw badHeader(`expected an integer at character ${this.#pos}`);
    this.#pos += digits.length;
    const value = Number(digits);
    if (!Number.isSafeInteger(value)) throw badHeader(`dimension ${digits} is too large`);
    return value;
  }

  #expect(token: string): void {
    if (this.#peek() !== token) {
      throw badHeader(`expected '${token}' at character ${this.#pos} of the header`);
    }
    this.#pos++;
  }

  /** The next non-space character, or "" at the end. */
  #peek(): string {
    this.#skipSpace();
    return this.#text[this.#pos] ?? "";
  }

  #skipSpace(): void {
    while (/\s/.test(this.#text[this.#pos] ?? "")) this.#pos++;
  }
}

function checkDtype(descr: string): NpyDtype {
  const dtype = DTYPE_ALIASES[descr] ?? descr;
  if (Object.hasOwn(CONSTRUCTORS, dtype)) return dtype as NpyDtype;
  if (descr.startsWith(">")) {
    throw new FormatError(
      FORMAT,
      "big-endian",
      `dtype '${descr}' is big-endian; convert with arr.astype(arr.dtype.newbyteorder('<'))`,
    );
  }
  throw new FormatError(
    FORMAT,
    "unsupported-dtype",
    `dtype '${descr}' is not supported (${Object.keys(CONSTRUCTORS).join(", ")} are)`,
  );
}

/** Element count of `shape`, checked to fill exactly the `available` data bytes. */
function checkDataLength(shape: number[], itemBytes: number, available: number): number {
  const mismatch = (detail: string) =>
    new FormatError(
      FORMAT,
      "length-mismatch",
      `shape (${shape.join(", ")}) of ${itemBytes}-byte items ${detail}, but ${available} data bytes follow the header`,
    );
  const maxCount = Math.floor(available / itemBytes);
  let count = shape.includes(0) ? 0 : 1;
  for (const dim of shape) {
    count *= dim;
    // Stop before the product can grow past exact integers.
    if (count > maxCount) throw mismatch("needs more bytes");
  }
  if (count * itemBytes !== available) throw mismatch(`needs ${count * itemBytes} bytes`);
  return count;
}

function badHeader(detail: string): FormatError {
  return new FormatError(FORMAT, "bad-header", `malformed header: ${detail}`);
}
