/**
 * Fixed-width bit packing of unsigned integers, LSB-first.
 *
 * Value i of width b occupies bits [i*b, (i+1)*b) of a little-endian bit stream: bit j of the
 * stream is bit (j % 8) of byte floor(j / 8), and the low bit of each value comes first. This is
 * the order of `np.unpackbits(bytes, bitorder="little")`. Bits after the last value, up to the
 * next byte boundary, are padding and are written as zero.
 *
 * Both directions work a word at a time, never a bit at a time: packing ORs each value into a
 * 32-bit accumulator and stores whole words; unpacking does one unaligned 32-bit load per value.
 */

import { FormatError } from "../errors.ts";

export const MIN_PACKED_BITS = 1;
export const MAX_PACKED_BITS = 24;

/** Bytes needed for `count` values of `bits` bits: ceil(count * bits / 8). */
export function packedByteLength(count: number, bits: number): number {
  checkBits(bits);
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new FormatError(
      "bitpack",
      "bad-count",
      `value count ${count} is not a non-negative integer`,
    );
  }
  return Math.ceil((count * bits) / 8);
}

/**
 * Packs `values` (integers in [0, 2^bits)) into `out` starting at `outOffset`, writing exactly
 * `packedByteLength(values.length, bits)` bytes (the last byte's padding bits are set to zero, so
 * `out` need not be zeroed first). Returns `out`.
 */
export function packBits(
  values: ArrayLike<number>,
  bits: number,
  out: Uint8Array = new Uint8Array(packedByteLength(values.length, bits)),
  outOffset = 0,
): Uint8Array {
  checkRoom(out.length - outOffset, packedByteLength(values.length, bits), "output");
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const max = 2 ** bits - 1;
  // `acc` holds `pending` (< 32) bits not yet written; whole 32-bit words go out at once.
  let acc = 0;
  let pending = 0;
  let p = outOffset;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    // `>>> 0` maps negatives, fractions, NaN and values >= 2^32 to something different.
    if (value >>> 0 !== value || value > max) {
      throw new FormatError(
        "bitpack",
        "value-out-of-range",
        `value ${value} at index ${i} is not an integer in [0, ${max}] (${bits} bits)`,
      );
    }
    acc |= value << pending;
    pending += bits;
    if (pending >= 32) {
      view.setUint32(p, acc, true);
      p += 4;
      pending -= 32;
      // The high `pending` bits of value did not fit (none when pending is 0: value >>> bits).
      acc = value >>> (bits - pending);
    }
  }
  for (; pending > 0; pending -= 8) {
    out[p++] = acc & 0xff;
    acc >>>= 8;
  }
  return out;
}

/**
 * Unpacks `count` values of `bits` bits from `bytes` into `out` (a new array if not given)
 * starting at `outOffset`. Reads `packedByteLength(count, bits)` bytes from the start of `bytes`;
 * padding bits are ignored here (see {@link paddingIsZero}). Returns `out`.
 */
export function unpackBits(
  bytes: Uint8Array,
  count: number,
  bits: number,
  given?: Uint32Array,
  outOffset = 0,
): Uint32Array {
  const byteLength = packedByteLength(count, bits);
  checkRoom(bytes.length, byteLength, "input");
  // Allocated only once count is checked against the input: a bad or huge count is a FormatError,
  // not a RangeError from the typed array (or an allocation of gigabytes).
  const out = given ?? new Uint32Array(count);
  checkRoom(out.length - outOffset, count, "output");
  const view = new DataView(bytes.buffer, bytes.byteOffset, byteLength);
  const mask = 2 ** bits - 1;
  // A value starts at bit `shift` (< 8) of byte `p` and, as bits <= 24, ends within 4 bytes:
  // one unaligned 32-bit load per value while 4 bytes remain, a bounded load for the last few.
  const lastWordStart = byteLength - 4;
  let p = 0;
  let shift = 0;
  const end = outOffset + count;
  for (let i = outOffset; i < end; i++) {
    const word = p <= lastWordStart ? view.getUint32(p, true) : loadTail(bytes, p, byteLength);
    out[i] = (word >>> shift) & mask;
    shift += bits;
    p += shift >>> 3;
    shift &= 7;
  }
  return out;
}

/** The little-endian word made of the (fewer than 4) bytes from p to `end`. */
function loadTail(bytes: Uint8Array, p: number, end: number): number {
  let word = 0;
  for (let k = 0; p + k < end; k++) word |= bytes[p + k] << (8 * k);
  return word;
}

/** Whether the padding bits after `count` values of `bits` bits are all zero. */
export function paddingIsZero(bytes: Uint8Array, count: number, bits: number): boolean {
  const usedBits = count * bits;
  const tailBits = usedBits % 8;
  if (tailBits === 0) return true;
  const lastByte = bytes[(usedBits - tailBits) / 8];
  return lastByte >>> tailBits === 0;
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < MIN_PACKED_BITS || bits > MAX_PACKED_BITS) {
    throw new FormatError(
      "bitpack",
      "bad-bit-width",
      `bit width ${bits} is not an integer in [${MIN_PACKED_BITS}, ${MAX_PACKED_BITS}]`,
    );
  }
}

function checkRoom(available: number, needed: number, what: "input" | "output"): void {
  if (available < needed) {
    throw new FormatError(
      "bitpack",
      what === "input" ? "truncated" : "output-too-small",
      `${what} has ${available} ${what === "input" ? "bytes" : "slots"} but ${needed} are needed`,
    );
  }
}
