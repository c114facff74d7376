import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../shared/src/errors.ts";
import {
  bfloat16ToFloat32,
  type Dtype,
  decodeElements,
  decodeTensorBytes,
  elementByteRange,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  headerLengthFromPrefix,
  parseSafetensors,
  parseSafetensorsHeader,
  readTensor,
  SAFETENSORS_PREFIX_BYTES,
  type SafetensorsFile,
  type Tensor,
  type TensorArray,
  tensorByteRange,
  toInt32Array,
  writeSafetensors,
} from "../../shared/src/format/safetensors.ts";
import { FIXTURES_DIR } from "../helpers/fixtures.ts";

const fixtureFiles = readdirSync(FIXTURES_DIR).filter((f) => f.endsWith(".safetensors"));
const readFixture = (name: string) => readFileSync(join(FIXTURES_DIR, name));
const readSidecar = (name: string) => JSON.parse(readFileSync(join(FIXTURES_DIR, name), "utf8"));

function bytesOf(array: TensorArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** A file with any header text (no validation, no padding) followed by `data`. */
function rawFile(header: string | object, data: Uint8Array | number = 0): Uint8Array {
  const text = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}

function readAll(file: SafetensorsFile): Map<string, Tensor> {
  return new Map([...file.tensors.keys()].map((name) => [name, readTensor(file, name)]));
}

function expectFormatError(action: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(FormatError);
  expect((caught as FormatError).code).toBe(code);
  if (message) expect((caught as FormatError).message).toMatch(message);
}

// ---------------------------------------------------------------------------------------------
// Reference conversions, written from the definitions rather than from bit tricks

function float16Reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Nearest of the sorted candidate values (bits ascending with value), ties to even bits. */
function nearestBits(x: number, candidates: Float64Array, firstBits: number): number {
  let lo = 0;
  let hi = candidates.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (candidates[mid] <= x) lo = mid;
    else hi = mid;
  }
  const dLo = x - candidates[lo];
  const dHi = candidates[hi] - x;
  const pick = dLo < dHi || (dLo === dHi && (firstBits + lo) % 2 === 0) ? lo : hi;
  return firstBits + pick;
}

/** Positive float16 values 0x0000..0x7c00, with inf standing in as 2^16 (the next binade). */
const F16_POSITIVE = Float64Array.from({ length: 0x7c01 }, (_, h) =>
  h === 0x7c00 ? 2 ** 16 : float16Reference(h),
);

function float32ToFloat16Reference(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(x);
  if (magnitude >= 2 ** 16) return sign | 0x7c00;
  return sign | nearestBits(magnitude, F16_POSITIVE, 0);
}

function float32ToBfloat16Reference(x: number): number {
  const bits = bitsOf(Float32Array.of(x))[0];
  const sign = bits & 0x80000000 ? 0x8000 : 0;
  if (!Number.isFinite(x)) return sign | 0x7f80;
  const lower = (bits & 0x7fffffff) >>> 16; // truncation: the candidate below
  const value = (b: number) => (b === 0x7f80 ? 2 ** 128 : bfloat16ToFloat32(Uint16Array.of(b))[0]);
  const candidates = Float64Array.of(value(lower), value(lower + 1));
  return sign | nearestBits(Math.abs(x), candidates, lower);
}

describe("float16 and bfloat16 conversion", () => {
  const allBits = Uint16Array.from({ length: 65536 }, (_, i) => i);

  it("decodes every float16 bit pattern to its exact value", () => {
    const decoded = float16ToFloat32(allBits);
    for (let h = 0; h < 65536; h++) {
      expect(Object.is(decoded[h], float16Reference(h)), `0x${h.toString(16)}`).toBe(true);
    }
  });

  it("re-encodes every float16 and bfloat16 bit pattern to itself, NaN payloads included", () => {
    expect(float32ToFloat16(float16ToFloat32(allBits))).toEqual(allBits);
    expect(float32ToBfloat16(bfloat16ToFloat32(allBits))).toEqual(allBits);
  });

  it("decodes bfloat16 as the top half of a float32", () => {
    const decoded = bfloat16ToFloat32(allBits);
    for (let b = 0; b < 65536; b += 97) expect(bitsOf(decoded)[b]).toBe(b * 65536);
  });

  it("gets the special float16 values right", () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x8000, -0],
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x0400, 2 ** -14], // smallest normal
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504], // largest finite
      [0x7c00, Number.POSITIVE_INFINITY],
      [0xfc00, Number.NEGATIVE_INFINITY],
    ];
    for (const [bits, value] of cases) {
      expect(Object.is(float16ToFloat32(Uint16Array.of(bits))[0], value)).toBe(true);
      expect(float32ToFloat16(Float32Array.of(value))[0]).toBe(bits);
    }
    expect(float16ToFloat32(Uint16Array.of(0x7e00, 0xfc01))).toEqual(
      Float32Array.of(Number.NaN, Number.NaN),
    );
  });

  it("rounds float32 to float16 to nearest, ties to even, with overflow and underflow", () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even is 1
      [1 + 3 * 2 ** -11, 0x3c02], // tie: even is 1+2^-9
      [65519, 0x7bff], // below the midpoint to "65536"
      [65520, 0x7c00], // the midpoint rounds to even, which is inf
      [1e10, 0x7c00],
      [-1e10, 0xfc00],
      [2 ** -25, 0x0000], // half the smallest subnormal: tie to even zero
      [-(2 ** -25), 0x8000],
      [2 ** -25 * 1.5, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2: even
      [1023.5 * 2 ** -24, 0x0400], // largest subnormal + half: rounds up to the smallest normal
      [1e-40, 0x0000], // float32 subnormal
      [Number.NaN, 0x7e00],
    ];
    for (const [value, bits] of cases) {
      expect(float32ToFloat16(Float32Array.of(value))[0], `${value}`).toBe(bits);
    }
  });

  it("rounds float32 to bfloat16 to nearest, ties to even", () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [1 + 2 ** -8, 0x3f80], // tie: even
      [1 + 3 * 2 ** -8, 0x3f82], // tie: even
      [1 + 2 ** -8 + 2 ** -20, 0x3f81],
      [3.4028234663852886e38, 0x7f80], // float32 max rounds past bfloat16 max to inf
      [Number.NEGATIVE_INFINITY, 0xff80],
      [-0, 0x8000],
      [1e-40, 0x0001], // a float32 subnormal, bits 0x000116c2: rounds down to its top half
    ];
    for (const [value, bits] of cases) {
      expect(float32ToBfloat16(Float32Array.of(value))[0], `${value}`).toBe(bits);
    }
    const nan = float32ToBfloat16(new Float32Array(new Uint32Array([0x7f800001]).buffer));
    expect(nan[0]).toBe(0x7fc0); // payload only in the dropped bits: still a NaN
  });

  it("matches a brute-force nearest-even reference on random float32 values", () => {
    fc.assert(
      fc.property(fc.float(), (x) => {
        const input = Float32Array.of(x);
        expect(float32ToFloat16(input)[0]).toBe(float32ToFloat16Reference(input[0]));
        if (!Number.isNaN(x)) {
          expect(float32ToBfloat16(input)[0]).toBe(float32ToBfloat16Reference(input[0]));
        }
      }),
      { numRuns: 5000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------

/** Per dtype: the writer's input type and its element size, to build random data from bytes. */
const INPUTS: Record<Exclude<Dtype, "F8_E5M2" | "F8_E4M3">, (bytes: Uint8Array) => TensorArray> = {
  BOOL: (b) => b.map((v) => v & 1),
  U8: (b) => b,
  I8: (b) => new Int8Array(b.buffer),
  I16: (b) => new Int16Array(b.buffer),
  U16: (b) => new Uint16Array(b.buffer),
  // F16/BF16 input: float32 values that the format represents exactly, so round trips are exact.
  F16: (b) => float16ToFloat32(new Uint16Array(b.buffer)),
  BF16: (b) => bfloat16ToFloat32(new Uint16Array(b.buffer)),
  I32: (b) => new Int32Array(b.buffer),
  U32: (b) => new Uint32Array(b.buffer),
  F32: (b) => new Float32Array(b.buffer),
  I64: (b) => new BigInt64Array(b.buffer),
  U64: (b) => new BigUint64Array(b.buffer),
  F64: (b) => new Float64Array(b.buffer),
};
const ITEM_SIZE: Record<keyof typeof INPUTS, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
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
};
const writableDtypes = Object.keys(INPUTS) as (keyof typeof INPUTS)[];

const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({
    dtype: fc.constantFrom(...writableDtypes),
    shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
  })
  .chain(({ dtype, shape }) => {
    const count = shape.reduce((a, b) => a * b, 1);
    return fc
      .uint8Array({ minLength: count * ITEM_SIZE[dtype], maxLength: count * ITEM_SIZE[dtype] })
      .map((bytes) => ({ dtype, shape, data: INPUTS[dtype](new Uint8Array(bytes)) }));
  });

const nameArb = fc
  .string({ unit: "binary", minLength: 0, maxLength: 12 })
  .filter((n) => n !== "__metadata__" && n !== "__proto__");
const tensorsArb = fc.dictionary(nameArb, tensorArb, { maxKeys: 6, noNullPrototype: true });
const metadataArb = fc.dictionary(nameArb, fc.string({ unit: "grapheme", maxLength: 10 }), {
  maxKeys: 3,
  noNullPrototype: true,
});

/** Compares by bytes, so NaN payloads and -0 count. F16/BF16 are compared after decoding. */
function expectSameTensor(actual: Tensor, expected: Tensor): void {
  expect(actual.dtype).toBe(expected.dtype);
  expect(actual.shape).toEqual(expected.shape);
  expect(actual.data.constructor).toBe(expected.data.constructor);
  expect(bytesOf(actual.data)).toEqual(bytesOf(expected.data));
}

describe("writeSafetensors and parseSafetensors", () => {
  it("round-trip every dtype, name and metadata", () => {
    fc.assert(
      fc.property(tensorsArb, metadataArb, (tensors, metadata) => {
        const bytes = writeSafetensors(tensors, metadata);
        const file = parseSafetensors(bytes);
        expect(file.dataStart % 8).toBe(0);
        expect({ ...file.metadata }).toEqual(metadata);
        expect(file.tensors.size).toBe(Object.keys(tensors).length);
        for (const [name, tensor] of Object.entries(tensors)) {
          expectSameTensor(readTensor(file, name), tensor);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("read byte ranges exactly like the whole buffer", () => {
    fc.assert(
      fc.property(tensorsArb, fc.nat(), fc.nat(), (tensors, a, b) => {
        const bytes = writeSafetensors(tensors);
        const whole = parseSafetensors(bytes);
        const headerLength = headerLengthFromPrefix(bytes.subarray(0, SAFETENSORS_PREFIX_BYTES));
        const header = parseSafetensorsHeader(bytes.subarray(8, 8 + headerLength), {
          fileSize: bytes.length,
        });
        expect(header.dataEnd).toBe(bytes.length);
        for (const [name, info] of header.tensors) {
          const range = tensorByteRange(info);
          const fetched = bytes.slice(range.offset, range.offset + range.length);
          const expected = readTensor(whole, name);
          expect(bytesOf(decodeTensorBytes(info, fetched))).toEqual(bytesOf(expected.data));
          // A run of elements, as when fetching some rows of a codebook.
          const first = a % (info.elementCount + 1);
          const count = b % (info.elementCount - first + 1);
          const rows = elementByteRange(info, first, count);
          const part = decodeElements(
            info.dtype,
            bytes.slice(rows.offset, rows.offset + rows.length),
          );
          expect(bytesOf(part)).toEqual(bytesOf(expected.data.subarray(first, first + count)));
        }
      }),
      { numRuns: 200 },
    );
  });

  it("sorts names by code point and pads the header with spaces to a multiple of 8", () => {
    const one = (v: number): Tensor => ({ dtype: "U8", shape: [1], data: Uint8Array.of(v) });
    // UTF-16 order would put U+FF5E before U+1F600; code-point (UTF-8 byte) order does not.
    const bytes = writeSafetensors({ "\u{1F600}": one(3), "\uFF5E": one(2), b: one(1), a: one(0) });
    const file = parseSafetensors(bytes);
    expect([...file.tensors.keys()]).toEqual(["a", "b", "\uFF5E", "\u{1F600}"]);
    expect([...bytes.subarray(file.dataStart)]).toEqual([0, 1, 2, 3]);
    const header = new TextDecoder().decode(bytes.subarray(8, file.dataStart));
    expect(header).toMatch(/^\{"a":\{"dtype":"U8","shape":\[1\],"data_offsets":\[0,1\]\},.*\} *$/);
    expect(file.dataStart % 8).toBe(0);
  });

  it("writes the layout of the reference serializer", () => {
    // safetensors' own test vector (tensor "attn.0", F32 [1,2,3] = 0..5, no padding needed).
    const bytes = writeSafetensors({
      "attn.0": { dtype: "F32", shape: [1, 2, 3], data: Float32Array.of(0, 1, 2, 3, 4, 5) },
    });
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(bytes).toEqual(rawFile(header, bytesOf(Float32Array.of(0, 1, 2, 3, 4, 5))));
    expect(writeSafetensors({}, { framework: "pt" })).toEqual(
      rawFile('{"__metadata__":{"framework":"pt"}}     '),
    );
    expect(writeSafetensors({})).toEqual(rawFile("{}      "));
  });

  it("views aligned data in place and copies misaligned data", () => {
    const bytes = writeSafetensors({
      a: { dtype: "U8", shape: [1], data: Uint8Array.of(7) }, // puts "b" at an odd offset
      b: { dtype: "F32", shape: [2], data: Float32Array.of(1.5, -2) },
      c: { dtype: "F32", shape: [1], data: Float32Array.of(3) },
    });
    const file = parseSafetensors(bytes);
    const b = readTensor(file, "b").data;
    expect(b).toEqual(Float32Array.of(1.5, -2));
    expect(b.buffer).not.toBe(bytes.buffer);
    // The whole file at an odd offset in a larger buffer: every typed array must still be right.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const moved = parseSafetensors(shifted.subarray(1));
    expect(readTensor(moved, "b").data).toEqual(Float32Array.of(1.5, -2));
    expect(readTensor(moved, "c").data).toEqual(Float32Array.of(3));
    const aligned = writeSafetensors({ c: { dtype: "F32", shape: [1], data: Float32Array.of(3) } });
    expect(readTensor(parseSafetensors(aligned), "c").data.buffer).toBe(aligned.buffer);
  });

  it("accepts an ArrayBuffer and a Map", () => {
    const tensors = new Map<string, Tensor>([
      ["x", { dtype: "I32", shape: [2], data: Int32Array.of(1, 2) }],
    ]);
    const bytes = writeSafetensors(tensors);
    const file = parseSafetensors(bytes.slice().buffer);
    expect(readTensor(file, "x").data).toEqual(Int32Array.of(1, 2));
  });

  it("parses, but does not decode, F8 tensors", () => {
    const file = parseSafetensors(
      rawFile({ f8: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }, 2),
    );
    expect(file.tensors.get("f8")?.elementCount).toBe(2);
    expectFormatError(() => readTensor(file, "f8"), "unsupported-dtype", /F8_E4M3/);
  });

  it("converts integer data to Int32Array with a range check", () => {
    expect(toInt32Array(BigInt64Array.of(-(2n ** 31n), 0n, 2n ** 31n - 1n))).toEqual(
      Int32Array.of(-(2 ** 31), 0, 2 ** 31 - 1),
    );
    expect(toInt32Array(Uint16Array.of(65535))).toEqual(Int32Array.of(65535));
    const ints = Int32Array.of(5);
    expect(toInt32Array(ints)).toBe(ints);
    expectFormatError(
      () => toInt32Array(BigInt64Array.of(1n, 2n ** 31n), "index_offset"),
      "int-out-of-range",
      /index_offset\[1\] = 2147483648/,
    );
    expectFormatError(() => toInt32Array(BigUint64Array.of(2n ** 64n - 1n)), "int-out-of-range");
    expectFormatError(() => toInt32Array(Uint32Array.of(2 ** 31)), "int-out-of-range");
    expectFormatError(() => toInt32Array(Float32Array.of(1)), "not-integer");
  });

  it("rejects bad writer input", () => {
    const f32 = Float32Array.of(1, 2);
    expectFormatError(
      () => writeSafetensors({ w: { dtype: "I32", shape: [2], data: f32 } }),
      "data-type",
      /"w": I32 data must be a Int32Array, got Float32Array/,
    );
    expectFormatError(
      () => writeSafetensors({ w: { dtype: "F32", shape: [3], data: f32 } }),
      "size-mismatch",
      /shape \[3\] has 3 elements but the data has 2/,
    );
    expectFormatError(
      () => writeSafetensors({ w: { dtype: "F32", shape: [-2], data: f32 } }),
      "shape-invalid",
    );
    expectFormatError(
      () => writeSafetensors({ w: { dtype: "F99" as Dtype, shape: [2], data: f32 } }),
      "unknown-dtype",
    );
    expectFormatError(
      () => writeSafetensors({ w: { dtype: "F8_E5M2", shape: [2], data: Uint8Array.of(1, 2) } }),
      "unsupported-dtype",
    );
    expectFormatError(
      () => writeSafetensors({ __metadata__: { dtype: "F32", shape: [2], data: f32 } }),
      "forbidden-name",
    );
    expectFormatError(
      () => writeSafetensors(new Map([["__proto__", { dtype: "F32", shape: [2], data: f32 }]])),
      "forbidden-name",
    );
    expectFormatError(
      () => writeSafetensors({}, { version: 2 as unknown as string }),
      "metadata-invalid",
      /__metadata__\["version"\] must be a string, got 2/,
    );
  });

  it("rejects bad ranges and lengths", () => {
    const file = parseSafetensors(
      writeSafetensors({ w: { dtype: "F32", shape: [2, 3], data: new Float32Array(6) } }),
    );
    const info = file.tensors.get("w");
    if (!info) throw new Error("missing");
    expect(elementByteRange(info, 3, 3)).toEqual({ offset: info.start + 12, length: 12 });
    expectFormatError(() => elementByteRange(info, 4, 3), "element-range", /"w" of 6 elements/);
    expectFormatError(() => elementByteRange(info, -1, 1), "element-range");
    expectFormatError(() => elementByteRange(info, 0.5, 1), "element-range");
    expectFormatError(
      () => decodeTensorBytes(info, new Uint8Array(20)),
      "byte-length",
      /"w" has 24 bytes but 20/,
    );
    expectFormatError(() => decodeElements("F32", new Uint8Array(6)), "byte-length");
    expectFormatError(() => readTensor(file, "constructor"), "tensor-not-found");
  });
});

// ---------------------------------------------------------------------------------------------

describe("fixtures in ../shared/fixtures", () => {
  it("are all present", () => {
    expect(fixtureFiles.length).toBeGreaterThanOrEqual(15);
  });

  it.each(fixtureFiles)("%s parses, decodes and rewrites byte for byte", (name) => {
    const bytes = readFixture(name);
    const file = parseSafetensors(bytes);
    expect(Object.keys(file.metadata).length).toBeGreaterThan(0);
    const tensors = readAll(file);
    for (const [tensorName, tensor] of tensors) {
      expect(tensor.data.length, tensorName).toBe(file.tensors.get(tensorName)?.elementCount);
      if (tensor.data instanceof Float32Array) {
        expect(tensor.data.every(Number.isFinite), tensorName).toBe(true);
      }
    }
    // The fixtures are written names-sorted, back to back and space-padded, as our writer does.
    expect(Buffer.compare(writeSafetensors(tensors, file.metadata), bytes)).toBe(0);
  });

  it.each(["quantizer_A1", "quantizer_A2", "quantizer_A3", "quantizer_A4"])(
    "%s has the shapes its sidecar describes",
    (fixture) => {
      const config = readSidecar(`${fixture}.json`);
      const file = parseSafetensors(readFixture(`${fixture}.safetensors`));
      const shape = (name: string) => file.tensors.get(name)?.shape;
      const { num_group: G, num_code: K, code_dim: D, tokens_per_data: T, batch: B } = config;
      expect(shape("embeddings")).toEqual([G, K, D]);
      expect(shape("x")).toEqual([B, ...config.input_data_size]);
      expect(shape("x_shuffle")).toEqual([B, T, D]);
      expect(shape("x_quant")).toEqual([B, T, D]);
      expect(shape("count")).toEqual([G, K]);
      expect(file.tensors.get("indices")?.dtype).toBe("I32");
      expect(shape("indices")).toEqual([B, T]);
      const indices = readTensor(file, "indices").data as Int32Array;
      expect(indices.every((i) => i >= 0 && i < K)).toBe(true);
    },
  );

  it("dcae_weights has diffusers' state dict and format metadata", () => {
    const file = parseSafetensors(readFixture("dcae_weights.safetensors"));
    expect(file.metadata.format).toBe("pt");
    expect(file.tensors.size).toBe(readSidecar("dcae_fixture.json").num_state_dict_tensors);
    expect(file.tensors.get("encoder.conv_in.weight")?.shape).toEqual([16, 3, 3, 3]);
  });

  it("preproc_B data parts hold the rows the sidecar lists", () => {
    const config = readSidecar("preproc_B.json");
    for (const part of config.data_files) {
      const file = parseSafetensors(readFixture(part.file));
      expect(file.tensors.get("data")?.shape).toEqual([
        part.rows[1] - part.rows[0],
        ...config.sample_shape,
      ]);
    }
  });

  it("train_C's I64 index_offset converts to Int32Array", () => {
    const K = readSidecar("train_C.json").quantizer.num_code;
    const file = parseSafetensors(readFixture("train_C.safetensors"));
    const raw = readTensor(file, "init.quantizer.index_offset");
    expect(raw.dtype).toBe("I64");
    expect(raw.data).toBeInstanceOf(BigInt64Array);
    const offsets = toInt32Array(raw.data, "index_offset");
    expect([...offsets]).toEqual(Array.from(offsets, (_, g) => g * K));
  });

  it("reads a fixture's tensors by byte range exactly as from the whole file", () => {
    const bytes = readFixture("dcae_weights.safetensors");
    const whole = parseSafetensors(bytes);
    const headerLength = headerLengthFromPrefix(bytes.subarray(0, 8));
    const header = parseSafetensorsHeader(bytes.subarray(8, 8 + headerLength), {
      fileSize: bytes.length,
    });
    expect([...header.tensors.keys()]).toEqual([...whole.tensors.keys()]);
    for (const [name, info] of header.tensors) {
      const { offset, length } = tensorByteRange(info);
      const data = decodeTensorBytes(info, bytes.subarray(offset, offset + length));
      expect(Buffer.compare(bytesOf(data), bytesOf(readTensor(whole, name).data))).toBe(0);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("hostile input", () => {
  const entry = (dtype: string, shape: unknown, offsets: unknown) =>
    `{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;

  const cases: [string, Uint8Array, string, RegExp?][] = [
    ["a file shorter than the prefix", new Uint8Array(5), "too-short", /only 5/],
    [
      "a header length over 100 MB",
      Uint8Array.of(0, 0, 0, 0, 0, 1, 0, 0),
      "header-too-large",
      /1099511627776 bytes, over the limit of 100000000/,
    ],
    ["the largest u64 header length", new Uint8Array(8).fill(255), "header-too-large"],
    [
      "a header length past the end of the file",
      (() => {
        const f = rawFile("{}");
        f[0] = 50;
        return f;
      })(),
      "header-length",
      /50 bytes but the file has only 2/,
    ],
    [
      "invalid UTF-8 bytes",
      (() => {
        const f = rawFile("{ }");
        f[9] = 0xc3; // a lead byte with no continuation
        return f;
      })(),
      "header-utf8",
    ],
    ["a byte order mark", rawFile("\uFEFF{}"), "header-json"],
    ["invalid JSON", rawFile('{"a":'), "header-json", /not valid JSON/],
    ["an array header", rawFile("[]"), "header-not-object", /got \[\]/],
    ["a null header", rawFile("null"), "header-not-object"],
    ["a string header", rawFile('"x"'), "header-not-object"],
    ["an entry that is not an object", rawFile('{"w":[1]}'), "entry-invalid", /"w"/],
    [
      "an unknown dtype",
      rawFile(`{"w":${entry("F128", [1], [0, 16])}}`, 16),
      "unknown-dtype",
      /"w" has dtype "F128"/,
    ],
    [
      "a dtype named after an Object.prototype member",
      rawFile(`{"w":${entry("toString", [1], [0, 1])}}`, 1),
      "unknown-dtype",
    ],
    ["a missing dtype", rawFile('{"w":{"shape":[1],"data_offsets":[0,1]}}', 1), "unknown-dtype"],
    [
      "a negative dimension",
      rawFile(`{"w":${entry("U8", [-1], [0, 0])}}`),
      "shape-invalid",
      /"w".*\[-1\]/,
    ],
    ["a fractional dimension", rawFile(`{"w":${entry("U8", [1.5], [0, 1])}}`), "shape-invalid"],
    ["a string dimension", rawFile(`{"w":${entry("U8", ["2"], [0, 2])}}`, 2), "shape-invalid"],
    [
      "a shape that is not an array",
      rawFile(`{"w":${entry("U8", 4, [0, 4])}}`, 4),
      "shape-invalid",
    ],
    ["a dimension of 2^53", rawFile(`{"w":${entry("U8", [2 ** 53], [0, 1])}}`), "shape-invalid"],
    [
      "a dimension of 1e400",
      rawFile(`{"w":{"dtype":"U8","shape":[1e400],"data_offsets":[0,1]}}`),
      "shape-invalid",
    ],
    [
      "an element count past 2^53",
      rawFile(`{"w":${entry("U8", [2 ** 30, 2 ** 30, 2 ** 30], [0, 1])}}`, 1),
      "too-large",
    ],
    ["a byte count past 2^53", rawFile(`{"w":${entry("F64", [2 ** 51], [0, 8])}}`, 8), "too-large"],
    [
      "data_offsets that do not match the shape",
      rawFile(`{"w":${entry("F32", [2, 2], [0, 12])}}`, 12),
      "size-mismatch",
      /"w": F32 of shape \[2,2\] needs 4 × 4 = 16 bytes, but data_offsets \[0, 12\] hold 12/,
    ],
    ["reversed data_offsets", rawFile(`{"w":${entry("U8", [0], [4, 0])}}`, 4), "offsets-invalid"],
    ["negative data_offsets", rawFile(`{"w":${entry("U8", [1], [-1, 0])}}`), "offsets-invalid"],
    ["three data_offsets", rawFile(`{"w":${entry("U8", [1], [0, 1, 2])}}`, 1), "offsets-invalid"],
    ["missing data_offsets", rawFile('{"w":{"dtype":"U8","shape":[1]}}', 1), "offsets-invalid"],
    [
      "a tensor past the end of the file",
      rawFile(`{"w":${entry("F32", [4], [0, 16])}}`, 8),
      "offsets-out-of-range",
      /"w" ends at data offset 16, but the file has only 8 data bytes/,
    ],
    [
      "a tensor far past the end of the file",
      rawFile(`{"w":${entry("F32", [2 ** 40], [0, 2 ** 42])}}`, 8),
      "offsets-out-of-range",
    ],
    [
      "overlapping tensors",
      rawFile(`{"a":${entry("F32", [4], [0, 16])},"b":${entry("F32", [2], [8, 16])}}`, 16),
      "offsets-overlap",
      /"b" at data_offsets \[8,16\] overlaps tensor "a" at \[0,16\]/,
    ],
    [
      "two tensors on the same bytes",
      rawFile(`{"a":${entry("U8", [4], [0, 4])},"b":${entry("U8", [4], [0, 4])}}`, 4),
      "offsets-overlap",
    ],
    [
      "a hole between tensors",
      rawFile(`{"a":${entry("U8", [4], [0, 4])},"b":${entry("U8", [4], [8, 12])}}`, 12),
      "offsets-gap",
      /4 bytes before tensor "b" \(data_offsets \[8,12\]\) belong to no tensor/,
    ],
    [
      "a hole at the start of the data",
      rawFile(`{"a":${entry("U8", [4], [4, 8])}}`, 8),
      "offsets-gap",
    ],
    [
      "data after the last tensor",
      rawFile(`{"a":${entry("U8", [4], [0, 4])}}`, 6),
      "trailing-data",
      /last 2 of the file's 6 data bytes/,
    ],
    ["data but no tensors", rawFile("{}", 3), "trailing-data"],
    [
      "a duplicate tensor name",
      rawFile(`{"a":${entry("U8", [4], [0, 4])},"a":${entry("U8", [4], [4, 8])}}`, 8),
      "duplicate-key",
      /"a" twice/,
    ],
    [
      "a duplicate name spelled with an escape",
      rawFile(`{"ab":${entry("U8", [4], [0, 4])},"\\u0061b":${entry("U8", [4], [0, 4])}}`, 4),
      "duplicate-key",
      /"ab"/,
    ],
    [
      "a duplicate field inside an entry",
      rawFile('{"a":{"dtype":"U8","dtype":"F32","shape":[4],"data_offsets":[0,4]}}', 4),
      "duplicate-key",
      /"dtype"/,
    ],
    ["a duplicate metadata key", rawFile('{"__metadata__":{"k":"1","k":"2"}}'), "duplicate-key"],
    [
      "a duplicate __metadata__",
      rawFile('{"__metadata__":{"k":"1"},"__metadata__":{}}'),
      "duplicate-key",
    ],
    [
      "metadata that is not an object",
      rawFile('{"__metadata__":["pt"]}'),
      "metadata-invalid",
      /got \["pt"\]/,
    ],
    ["null metadata", rawFile('{"__metadata__":null}'), "metadata-invalid"],
    [
      "a metadata value that is not a string",
      rawFile('{"__metadata__":{"epochs":3}}'),
      "metadata-invalid",
      /__metadata__\["epochs"\] must be a string, got 3/,
    ],
    ["a nested metadata value", rawFile('{"__metadata__":{"a":{"b":"c"}}}'), "metadata-invalid"],
    [
      "a tensor named __proto__",
      rawFile(`{"__proto__":${entry("U8", [1], [0, 1])}}`, 1),
      "forbidden-name",
    ],
    ["a metadata key __proto__", rawFile('{"__metadata__":{"__proto__":"x"}}'), "forbidden-name"],
  ];

  it.each(cases)("rejects %s", (_, bytes, code, message) => {
    expectFormatError(() => parseSafetensors(bytes), code, message);
  });

  it("accepts strings that merely look like structure, and keys repeated in other objects", () => {
    const header = `{"__metadata__":{"a":"}\\",{[","b":"x"},"a":${entry("U8", [1], [0, 1])},"b":${entry("U8", [1], [1, 2])}}`;
    const file = parseSafetensors(rawFile(header, 2));
    expect(file.metadata).toEqual(Object.assign(Object.create(null), { a: '}",{[', b: "x" }));
    expect(Object.getPrototypeOf(file.metadata)).toBe(null);
    expect([...file.tensors.keys()]).toEqual(["a", "b"]);
  });

  it("ignores unknown entry fields, as the reference reader does", () => {
    const file = parseSafetensors(
      rawFile('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":true}}', 1),
    );
    expect(file.tensors.get("w")?.shape).toEqual([1]);
  });

  it("checks the header alone without the file size, and with it", () => {
    const header = new TextEncoder().encode(`{"w":${entry("U8", [4], [0, 4])}}`);
    const parsed = parseSafetensorsHeader(header);
    expect(parsed.dataEnd).toBe(8 + header.length + 4);
    expectFormatError(
      () => parseSafetensorsHeader(header, { fileSize: 8 + header.length + 2 }),
      "offsets-out-of-range",
    );
    expectFormatError(() => parseSafetensorsHeader(header, { fileSize: 10 }), "header-length");
    expectFormatError(() => parseSafetensorsHeader(header, { fileSize: -1 }), "file-size");
    const gap = new TextEncoder().encode(`{"w":${entry("U8", [4], [2, 6])}}`);
    expectFormatError(() => parseSafetensorsHeader(gap), "offsets-gap");
    expect(headerLengthFromPrefix(Uint8Array.of(16, 0, 0, 0, 0, 0, 0, 0, 99))).toBe(16);
    expectFormatError(
      () => headerLengthFromPrefix(Uint8Array.of(0, 0, 1, 0, 0, 0, 0, 0), 1000),
      "header-too-large",
    );
  });

  it("throws only FormatErrors on corrupted files", () => {
    const valid = writeSafetensors(
      {
        a: { dtype: "F16", shape: [2, 2], data: new Float32Array(4) },
        b: { dtype: "I64", shape: [3], data: new BigInt64Array(3) },
      },
      { k: "v" },
    );
    const corruption = fc.array(
      fc.record({ at: fc.nat({ max: valid.length - 1 }), value: fc.integer({ min: 0, max: 255 }) }),
      { minLength: 1, maxLength: 4 },
    );
    fc.assert(
      fc.property(corruption, fc.nat({ max: valid.length }), (edits, cut) => {
        const bytes = valid.slice(0, cut === 0 ? valid.length : cut);
        for (const { at, value } of edits) if (at < bytes.length) bytes[at] = value;
        try {
          const file = parseSafetensors(bytes);
          for (const name of file.tensors.keys()) readTensor(file, name);
        } catch (error) {
          expect(error).toBeInstanceOf(FormatError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("throws only FormatErrors on random headers", () => {
    const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? "");
    fc.assert(
      fc.property(fc.oneof(json, fc.string()), fc.nat({ max: 64 }), (header, dataLength) => {
        try {
          parseSafetensors(rawFile(header, dataLength));
        } catch (error) {
          expect(error).toBeInstanceOf(FormatError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
