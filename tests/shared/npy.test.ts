import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type NpyData,
  type NpyDtype,
  npyDtypeOf,
  readNpy,
  writeNpy,
} from "../../shared/src/format/npy.ts";
import { readTokenNpy, writeTokenNpy } from "../../shared/src/format/token-convert.ts";
import type { TokenStreamParams } from "../../shared/src/format/token-stream.ts";
import { formatError } from "../helpers/format-error.ts";

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const base64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** A .npy file with the given header text, padded to 64 bytes as numpy pads it. */
function rawNpy(dict: string, data: Uint8Array = new Uint8Array(0), major = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const padding = 64 - ((prefix + dict.length + 1) % 64);
  const header = ascii(`${dict}${" ".repeat(padding)}\n`);
  const out = new Uint8Array(prefix + header.length + data.length);
  out.set([0x93, ...ascii("NUMPY"), major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, prefix);
  out.set(data, prefix + header.length);
  return out;
}

/** Files written by numpy 1.24 (np.save, or format.write_array for versions 2.0 and 3.0). */
const NUMPY_FILES = {
  // np.array([1.5, -2, 3, 4], '<f4')
  f4: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAAwAAAQEAAAIBA",
  // np.arange(6, dtype='<i8').reshape(2, 3) - 2
  i8: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr+////////////////////AAAAAAAAAAABAAAAAAAAAAIAAAAAAAAAAwAAAAAAAAA=",
  // np.arange(3, dtype='<f4'), format 2.0
  v2: "k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEA=",
  // np.arange(3, dtype='|u1'), format 3.0
  v3: "k05VTVBZAwB0AAAAeydkZXNjcic6ICd8dTEnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAQI=",
  // np.arange(2, dtype='|u1').reshape((2,) + (1,) * 14): numpy's spare space for growing the
  // first axis pushes this header from 128 to 192 bytes
  grown:
    "k05VTVBZAQC2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDEsIDEsIDEsIDEsIDEsIDEsIDEsIDEsIDEsIDEsIDEsIDEsIDEsIDEpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAE=",
  // np.array([[1, 2, 3], [4, 5, 6]], '<u2')
  u2: "k05VTVBZAQB2AHsnZGVzY3InOiAnPHUyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAIAAwAEAAUABgA=",
};

describe("writeNpy", () => {
  it("writes np.zeros((2, 3), '<i4') byte for byte as numpy does", () => {
    const dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
    const preamble = ascii(
      `\x93NUMPY\x01\x00v\x00${dict}${" ".repeat(128 - 10 - dict.length - 1)}\n`,
    );
    expect(preamble.length).toBe(128);
    const bytes = writeNpy(new Int32Array(6), [2, 3]);
    expect(bytes.subarray(0, 128)).toEqual(preamble);
    expect(bytes.length).toBe(128 + 24);
    expect(bytes.subarray(128).every((b) => b === 0)).toBe(true);
  });

  it("writes what numpy 1.24 writes for other dtypes and shapes", () => {
    expect(writeNpy(Float32Array.of(1.5, -2, 3, 4), [4])).toEqual(base64(NUMPY_FILES.f4));
    expect(writeNpy(BigInt64Array.of(-2n, -1n, 0n, 1n, 2n, 3n), [2, 3])).toEqual(
      base64(NUMPY_FILES.i8),
    );
    expect(writeNpy(Uint16Array.of(1, 2, 3, 4, 5, 6), [2, 3])).toEqual(base64(NUMPY_FILES.u2));
    const grown = writeNpy(Uint8Array.of(0, 1), [2, ...new Array(14).fill(1)]);
    expect(grown).toEqual(base64(NUMPY_FILES.grown));
    expect(grown.length).toBe(192 + 2);
  });

  it("pads every header to a multiple of 64 bytes ending in a newline", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 20 }), (shape) => {
        const count = shape.reduce((a, b) => a * b, 1);
        const bytes = writeNpy(new Uint8Array(count), shape);
        const headerLength = bytes[8] | (bytes[9] << 8);
        expect((10 + headerLength) % 64).toBe(0);
        expect(bytes[10 + headerLength - 1]).toBe(0x0a);
      }),
    );
  });

  it("writes the bytes of a subarray view, not of its whole buffer", () => {
    const whole = Int32Array.of(9, 1, 2, 9);
    expect(readNpy(writeNpy(whole.subarray(1, 3), [2])).data).toEqual(Int32Array.of(1, 2));
  });

  it("rejects a shape that does not match the data, or is not a shape", () => {
    expect(formatError(() => writeNpy(new Int32Array(6), [2, 4])).code).toBe("length-mismatch");
    expect(formatError(() => writeNpy(new Int32Array(0), [-1])).code).toBe("bad-shape");
    expect(formatError(() => writeNpy(new Int32Array(0), [0.5])).code).toBe("bad-shape");
    expect(formatError(() => writeNpy(new Int32Array(1), new Array(65).fill(1))).code).toBe(
      "bad-shape",
    );
  });
});

describe("readNpy", () => {
  it("reads files numpy wrote, in formats 1.0, 2.0 and 3.0", () => {
    const f4 = readNpy(base64(NUMPY_FILES.f4));
    expect(f4.dtype).toBe("<f4");
    expect(f4.shape).toEqual([4]);
    expect(f4.data).toEqual(Float32Array.of(1.5, -2, 3, 4));
    const i8 = readNpy(base64(NUMPY_FILES.i8));
    expect(i8).toEqual({
      dtype: "<i8",
      shape: [2, 3],
      data: BigInt64Array.of(-2n, -1n, 0n, 1n, 2n, 3n),
    });
    expect(readNpy(base64(NUMPY_FILES.v2))).toEqual({
      dtype: "<f4",
      shape: [3],
      data: Float32Array.of(0, 1, 2),
    });
    expect(readNpy(base64(NUMPY_FILES.v3))).toEqual({
      dtype: "|u1",
      shape: [3],
      data: Uint8Array.of(0, 1, 2),
    });
  });

  it("reads headers padded to 16 bytes (older numpy) and other valid spellings", () => {
    const dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }";
    const text = `${dict}${" ".repeat(16 - ((10 + dict.length + 1) % 16))}\n`;
    const file = Uint8Array.from([
      0x93,
      ...ascii("NUMPY"),
      1,
      0,
      text.length,
      0,
      ...ascii(text),
      1,
      0,
      2,
      0,
      3,
      0,
    ]);
    expect(readNpy(file)).toEqual({ dtype: "<u2", shape: [3], data: Uint16Array.of(1, 2, 3) });

    const reordered = rawNpy(
      '{"shape":(1,2),"fortran_order":False,"descr":"<u1"}',
      Uint8Array.of(4, 5),
    );
    expect(readNpy(reordered)).toEqual({ dtype: "|u1", shape: [1, 2], data: Uint8Array.of(4, 5) });
    const scalar = rawNpy(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
      new Uint8Array(8),
    );
    expect(readNpy(scalar)).toEqual({ dtype: "<f8", shape: [], data: Float64Array.of(0) });
  });

  it("round-trips every dtype and shape, from any offset of a buffer", () => {
    const makers: Record<NpyDtype, (n: number, seed: number) => NpyData> = {
      "<f4": (n, s) => Float32Array.from({ length: n }, (_, i) => (i - s) / 3),
      "<f8": (n, s) => Float64Array.from({ length: n }, (_, i) => Math.sin(i + s)),
      "|i1": (n, s) => Int8Array.from({ length: n }, (_, i) => i * s),
      "|u1": (n, s) => Uint8Array.from({ length: n }, (_, i) => i + s),
      "<i2": (n, s) => Int16Array.from({ length: n }, (_, i) => i * s * 97),
      "<u2": (n, s) => Uint16Array.from({ length: n }, (_, i) => i * s * 89),
      "<i4": (n, s) => Int32Array.from({ length: n }, (_, i) => (i - s) * 1e6),
      "<u4": (n, s) => Uint32Array.from({ length: n }, (_, i) => (i * s * 7919) >>> 0),
      "<i8": (n, s) => BigInt64Array.from({ length: n }, (_, i) => BigInt(i - s) * 2n ** 40n),
      "<u8": (n, s) => BigUint64Array.from({ length: n }, (_, i) => BigInt(i + s) * 2n ** 50n),
    };
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(makers) as NpyDtype[])),
        fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 0, max: 7 }),
        (dtype, shape, seed, offset) => {
          const data = makers[dtype](
            shape.reduce((a, b) => a * b, 1),
            seed,
          );
          expect(npyDtypeOf(data)).toBe(dtype);
          const file = writeNpy(data, shape);
          const shifted = new Uint8Array(offset + file.length);
          shifted.set(file, offset);
          expect(readNpy(shifted.subarray(offset))).toEqual({ dtype, shape, data });
        },
      ),
    );
  });

  it("rejects what it cannot read, each with its own code", () => {
    const ok =
      (dict: string, data = new Uint8Array(0)) =>
      () =>
        readNpy(rawNpy(dict, data));
    const cases: [string, () => unknown][] = [
      ["bad-magic", () => readNpy(ascii("PK\x03\x04 not npy"))],
      ["bad-magic", () => readNpy(new Uint8Array(0))],
      ["truncated", () => readNpy(Uint8Array.of(0x93, ...ascii("NUMPY"), 1))],
      [
        "truncated",
        () =>
          readNpy(
            rawNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }").subarray(0, 40),
          ),
      ],
      ["unsupported-version", () => readNpy(rawNpy("{}", new Uint8Array(0), 4))],
      [
        "fortran-order",
        ok("{'descr': '<i4', 'fortran_order': True, 'shape': (1,), }", new Uint8Array(4)),
      ],
      [
        "unsupported-dtype",
        ok("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)),
      ],
      [
        "unsupported-dtype",
        ok("{'descr': 'O', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)),
      ],
      [
        "unsupported-dtype",
        ok("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }"),
      ],
      [
        "big-endian",
        ok("{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)),
      ],
      [
        "length-mismatch",
        ok("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(4)),
      ],
      [
        "length-mismatch",
        ok("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(5)),
      ],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': False, }")],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'x': 1, }")],
      [
        "bad-header",
        ok("{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (1,), }"),
      ],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': False, 'shape': (1), }")],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': False, 'shape': (-1,), }")],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': 0, 'shape': (1,), }")],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': False, 'shape': '1', }")],
      ["bad-header", ok("{'descr': '<i4, 'fortran_order': False, 'shape': (1,), }")],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), } x")],
      [
        "bad-header",
        ok("{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
      ],
      ["bad-header", ok("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }\u00e9")],
      ["bad-header", ok("")],
    ];
    for (const [code, read] of cases) expect(formatError(read).code, String(read)).toBe(code);
  });

  it("checks declared sizes against the bytes present before allocating", () => {
    const hugeHeader = rawNpy("{}", new Uint8Array(0), 2);
    new DataView(hugeHeader.buffer).setUint32(8, 2 ** 31, true);
    expect(formatError(() => readNpy(hugeHeader)).code).toBe("header-too-large");

    const pastEnd = rawNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }");
    new DataView(pastEnd.buffer).setUint16(8, 60000, true);
    expect(formatError(() => readNpy(pastEnd)).code).toBe("truncated");

    for (const shape of [
      "(4000000000, 4000000000, 4000000000)",
      "(4000000000, 4000000000, 0, 7)",
    ]) {
      const huge = rawNpy(
        `{'descr': '<f8', 'fortran_order': False, 'shape': ${shape}, }`,
        new Uint8Array(16),
      );
      const started = performance.now();
      const error = formatError(() => readNpy(huge));
      expect(performance.now() - started).toBeLessThan(50);
      expect(error.code).toBe("length-mismatch");
      expect(error.message).toContain("16 data bytes");
    }
  });
});

describe("token ids as .npy", () => {
  const params: TokenStreamParams = {
    tokenizerHash: "ab".repeat(32),
    tokensPerRecord: 4,
    codesPerGroup: 1000,
    groups: 4,
  };

  it("writes int32 of shape (N, T) and reads it back", () => {
    const tokens = Uint32Array.of(0, 999, 5, 6, 7, 8, 9, 10);
    const file = writeTokenNpy(params, tokens);
    expect(readNpy(file)).toEqual({ dtype: "<i4", shape: [2, 4], data: Int32Array.from(tokens) });
    const decoded = readTokenNpy(file, params);
    expect(decoded.tokens).toEqual(tokens);
    expect(decoded.header.recordCount).toBe(2);
    expect(decoded.header.bitsPerToken).toBe(10);
  });

  it("accepts any integer dtype, numpy's default int64 included", () => {
    const ids = [1, 2, 3, 4];
    for (const data of [
      BigInt64Array.from(ids, BigInt),
      BigUint64Array.from(ids, BigInt),
      Uint16Array.from(ids),
      Uint8Array.from(ids),
      Int8Array.from(ids),
      Uint32Array.from(ids),
    ]) {
      expect(Array.from(readTokenNpy(writeNpy(data, [1, 4]), params).tokens)).toEqual(ids);
    }
  });

  it("rejects floats, other shapes and ids outside [0, K)", () => {
    const read = (data: NpyData, shape: number[]) => () =>
      readTokenNpy(writeNpy(data, shape), params);
    expect(formatError(read(new Float32Array(4), [1, 4])).code).toBe("bad-token-dtype");
    expect(formatError(read(new Int32Array(4), [4])).code).toBe("bad-token-shape");
    expect(formatError(read(new Int32Array(6), [2, 3])).code).toBe("bad-token-shape");
    expect(formatError(read(new Int32Array(8), [2, 2, 2])).code).toBe("bad-token-shape");
    expect(formatError(read(Int32Array.of(0, 1, -1, 2), [1, 4])).code).toBe("token-out-of-range");
    expect(formatError(read(Int32Array.of(0, 1, 1000, 2), [1, 4])).code).toBe("token-out-of-range");
    expect(formatError(read(BigInt64Array.of(0n, 2n ** 60n, 1n, 2n), [1, 4])).code).toBe(
      "token-out-of-range",
    );
    expect(formatError(() => writeTokenNpy(params, Uint32Array.of(1, 2, 3, 1000))).code).toBe(
      "token-out-of-range",
    );
  });
});
