import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../shared/src/errors.ts";
import {
  packBits,
  packedByteLength,
  paddingIsZero,
  unpackBits,
} from "../../shared/src/format/bitpack.ts";

/** Bit j of the stream is bit (j % 8) of byte floor(j / 8); value i owns bits [i*b, (i+1)*b). */
function naivePack(values: readonly number[], bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((values.length * bits) / 8));
  values.forEach((value, i) => {
    for (let k = 0; k < bits; k++) {
      if (Math.floor(value / 2 ** k) % 2 === 1) {
        const bit = i * bits + k;
        out[Math.floor(bit / 8)] |= 1 << (bit % 8);
      }
    }
  });
  return out;
}

function naiveUnpack(bytes: Uint8Array, count: number, bits: number): number[] {
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    let value = 0;
    for (let k = 0; k < bits; k++) {
      const bit = i * bits + k;
      if ((bytes[Math.floor(bit / 8)] >> (bit % 8)) & 1) value += 2 ** k;
    }
    values.push(value);
  }
  return values;
}

/** Values of `bits` bits, with the extremes 0 and 2^bits - 1 drawn often. */
function valuesOf(bits: number, maxLength = 200) {
  const max = 2 ** bits - 1;
  return fc.array(fc.oneof(fc.constantFrom(0, max), fc.integer({ min: 0, max })), {
    maxLength,
  });
}

const ALL_WIDTHS = Array.from({ length: 24 }, (_, i) => i + 1);

describe("packBits / unpackBits against a bit-by-bit reference", () => {
  it.each(ALL_WIDTHS)("b = %i: pack equals the reference, unpack inverts it", (bits) => {
    fc.assert(
      fc.property(valuesOf(bits), (values) => {
        const reference = naivePack(values, bits);
        expect(packBits(values, bits)).toEqual(reference);
        expect(Array.from(unpackBits(reference, values.length, bits))).toEqual(values);
        expect(naiveUnpack(reference, values.length, bits)).toEqual(values);
        expect(packedByteLength(values.length, bits)).toBe(reference.length);
        expect(paddingIsZero(reference, values.length, bits)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("unpacks random bytes exactly as the reference does, for every width", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.uint8Array({ maxLength: 300 }),
        (bits, bytes) => {
          const count = Math.floor((bytes.length * 8) / bits);
          expect(Array.from(unpackBits(bytes, count, bits))).toEqual(
            naiveUnpack(bytes, count, bits),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("bit order", () => {
  it("is LSB-first, as np.unpackbits(..., bitorder='little') reads it", () => {
    expect(packBits([1, 1], 1)).toEqual(Uint8Array.of(0b11));
    expect(packBits([1, 2, 4], 3)).toEqual(Uint8Array.of(0x11, 0x01));
    expect(packBits([0xabcdef], 24)).toEqual(Uint8Array.of(0xef, 0xcd, 0xab));
    expect(packBits([0x3fff, 1], 14)).toEqual(Uint8Array.of(0xff, 0x7f, 0x00, 0x00));
  });
});

describe("offsets and neighbouring bytes", () => {
  it("packs at an offset without touching the bytes around it", () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 24 })
          .chain((bits) => fc.tuple(fc.constant(bits), valuesOf(bits))),
        fc.integer({ min: 0, max: 9 }),
        ([bits, values], offset) => {
          const length = packedByteLength(values.length, bits);
          const out = new Uint8Array(offset + length + 5).fill(0xa5);
          packBits(values, bits, out, offset);
          expect(out.subarray(offset, offset + length)).toEqual(naivePack(values, bits));
          expect(out.subarray(0, offset).every((b) => b === 0xa5)).toBe(true);
          expect(out.subarray(offset + length).every((b) => b === 0xa5)).toBe(true);
        },
      ),
    );
  });

  it("unpacks into an offset of a larger array, ignoring bytes after the packed ones", () => {
    const values = [5, 0, 7, 3, 1];
    const packed = packBits(values, 3);
    const padded = Uint8Array.from([...packed, 0xff, 0xff, 0xff, 0xff]);
    const out = new Uint32Array(9).fill(99);
    unpackBits(padded, values.length, 3, out, 2);
    expect(Array.from(out)).toEqual([99, 99, 5, 0, 7, 3, 1, 99, 99]);
  });

  it("reads a subarray from its own start, not from the start of its buffer", () => {
    const whole = Uint8Array.of(0xff, ...packBits([9, 4, 1], 4));
    expect(Array.from(unpackBits(whole.subarray(1), 3, 4))).toEqual([9, 4, 1]);
  });
});

describe("padding", () => {
  it("tells whether the bits after the last value are zero", () => {
    expect(paddingIsZero(Uint8Array.of(0b0000_0111), 1, 3)).toBe(true);
    expect(paddingIsZero(Uint8Array.of(0b0000_1111), 1, 3)).toBe(false);
    expect(paddingIsZero(Uint8Array.of(0b1000_0000), 1, 3)).toBe(false);
    expect(paddingIsZero(Uint8Array.of(0xff), 1, 8)).toBe(true);
    expect(paddingIsZero(new Uint8Array(0), 0, 5)).toBe(true);
  });
});

describe("rejections", () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      expect(error).toBeInstanceOf(FormatError);
      return (error as FormatError).code;
    }
    throw new Error("did not throw");
  };

  it("rejects values that do not fit, negatives, fractions and NaN", () => {
    expect(code(() => packBits([8], 3))).toBe("value-out-of-range");
    expect(code(() => packBits([2 ** 24], 24))).toBe("value-out-of-range");
    expect(code(() => packBits([-1], 8))).toBe("value-out-of-range");
    expect(code(() => packBits([1.5], 8))).toBe("value-out-of-range");
    expect(code(() => packBits([Number.NaN], 8))).toBe("value-out-of-range");
    expect(code(() => packBits(Int32Array.of(3, -2), 8))).toBe("value-out-of-range");
  });

  it("rejects bit widths outside 1..24 and bad counts", () => {
    expect(code(() => packBits([0], 0))).toBe("bad-bit-width");
    expect(code(() => packBits([0], 25))).toBe("bad-bit-width");
    expect(code(() => unpackBits(new Uint8Array(4), 1, 2.5))).toBe("bad-bit-width");
    expect(code(() => packedByteLength(-1, 8))).toBe("bad-count");
  });

  it("rejects input that is too short and output without room", () => {
    expect(code(() => unpackBits(new Uint8Array(3), 2, 14))).toBe("truncated");
    expect(code(() => unpackBits(new Uint8Array(4), 2, 14, new Uint32Array(1)))).toBe(
      "output-too-small",
    );
    expect(code(() => packBits([1, 2, 3], 8, new Uint8Array(4), 2))).toBe("output-too-small");
  });

  // Found by npm run fuzz: the output array was allocated before the count was checked, so a
  // negative count threw a RangeError and a huge one allocated before "truncated".
  it("checks the count before allocating the output", () => {
    expect(code(() => unpackBits(new Uint8Array(4), -1, 8))).toBe("bad-count");
    expect(code(() => unpackBits(new Uint8Array(4), 1.5, 8))).toBe("bad-count");
    expect(code(() => unpackBits(new Uint8Array(4), 2 ** 40, 8))).toBe("truncated");
  });
});
