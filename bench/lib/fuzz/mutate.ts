/**
 * Inputs for the fuzz runs: random bytes, and mutations of valid inputs (bit flips, byte edits,
 * truncations, splices, length-field edits...). Everything is drawn from a seeded Rng, so a run
 * with the same seed sends the same inputs.
 */
import { crc32 } from "../../../shared/src/format/crc32.ts";
import { TOKEN_STREAM_HEADER_BYTES } from "../../../shared/src/format/token-stream.ts";
import type { Rng } from "../../../shared/src/quant/rng.ts";

/** Values that sit on the edges of the checks a parser makes. */
const INTERESTING_U8 = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING_U32 = [
  0, 1, 2, 7, 8, 63, 64, 255, 256, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
];

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.nextInt(items.length)];

export function randomBytes(rng: Rng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.nextInt(256);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A position, biased to the first 64 bytes, where headers and their length fields are. */
function position(rng: Rng, length: number): number {
  if (length === 0) return 0;
  return rng.nextFloat() < 0.6 ? rng.nextInt(Math.min(length, 64)) : rng.nextInt(length);
}

/** A length-like value: an interesting constant, or near the input's own size. */
function lengthValue(rng: Rng, size: number): number {
  const r = rng.nextFloat();
  if (r < 0.5) return pick(rng, INTERESTING_U32);
  if (r < 0.8) return Math.max(0, size + rng.nextInt(17) - 8) >>> 0;
  return rng.nextUint32();
}

type Mutation = (rng: Rng, bytes: Uint8Array, other: Uint8Array) => Uint8Array;

const MUTATIONS: Mutation[] = [
  function flipBits(rng, bytes) {
    const out = bytes.slice();
    if (out.length === 0) return out;
    for (let n = 1 + rng.nextInt(8); n > 0; n--)
      out[position(rng, out.length)] ^= 1 << rng.nextInt(8);
    return out;
  },
  function setBytes(rng, bytes) {
    const out = bytes.slice();
    if (out.length === 0) return out;
    for (let n = 1 + rng.nextInt(4); n > 0; n--) {
      out[position(rng, out.length)] =
        rng.nextFloat() < 0.5 ? pick(rng, INTERESTING_U8) : rng.nextInt(256);
    }
    return out;
  },
  function truncate(rng, bytes) {
    return bytes.slice(0, rng.nextInt(bytes.length + 1));
  },
  function append(rng, bytes) {
    return concat(bytes, randomBytes(rng, 1 + rng.nextInt(64)));
  },
  function splice(rng, bytes, other) {
    return concat(
      bytes.subarray(0, rng.nextInt(bytes.length + 1)),
      other.subarray(rng.nextInt(other.length + 1)),
    );
  },
  function editLengthField(rng, bytes) {
    const out = bytes.slice();
    const width = pick(rng, [1, 2, 4, 8]);
    if (out.length < width) return out;
    const at = Math.min(position(rng, out.length), out.length - width);
    const view = new DataView(out.buffer, out.byteOffset, out.length);
    const value = lengthValue(rng, out.length);
    const littleEndian = rng.nextFloat() < 0.5;
    if (width === 1) view.setUint8(at, value & 0xff);
    else if (width === 2) view.setUint16(at, value & 0xffff, littleEndian);
    else if (width === 4) view.setUint32(at, value, littleEndian);
    else view.setBigUint64(at, BigInt(value) * BigInt(1 + rng.nextInt(2 ** 20)), littleEndian);
    return out;
  },
  function insertBytes(rng, bytes) {
    const at = rng.nextInt(bytes.length + 1);
    return concat(bytes.subarray(0, at), randomBytes(rng, 1 + rng.nextInt(16)), bytes.subarray(at));
  },
  function deleteBytes(rng, bytes) {
    const at = rng.nextInt(bytes.length + 1);
    const end = Math.min(bytes.length, at + 1 + rng.nextInt(16));
    return concat(bytes.subarray(0, at), bytes.subarray(end));
  },
  function duplicateRange(rng, bytes) {
    const at = rng.nextInt(bytes.length + 1);
    const end = Math.min(bytes.length, at + 1 + rng.nextInt(256));
    return concat(bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end));
  },
];

/**
 * One input: 10% random bytes (half of them behind a valid input's first 8 bytes, to get past
 * magic numbers), 90% one to three stacked mutations of a valid input.
 */
export function mutateBytes(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  const seed = pick(rng, seeds);
  if (rng.nextFloat() < 0.1) {
    const noise = randomBytes(rng, rng.nextInt(Math.max(256, 2 * seed.length)));
    return rng.nextFloat() < 0.5 ? concat(seed.subarray(0, 8), noise) : noise;
  }
  let out = seed;
  for (let n = 1 + rng.nextInt(3); n > 0; n--) {
    out = pick(rng, MUTATIONS)(rng, out, pick(rng, seeds));
  }
  return out;
}

/** Where the token stream header's CRC-32 of the bytes before it sits (docs/token-stream.md). */
const HEADER_CRC_OFFSET = 60;

/**
 * Token stream mutations, half of them with the header CRC made right again: otherwise nearly
 * every header edit stops at `bad-header-crc` and the field checks behind it are never reached.
 */
export function mutateTokenStream(rng: Rng, streams: readonly Uint8Array[]): Uint8Array {
  const bytes = mutateBytes(rng, streams);
  if (bytes.length >= TOKEN_STREAM_HEADER_BYTES && rng.nextFloat() < 0.5) {
    const crc = crc32(bytes.subarray(0, HEADER_CRC_OFFSET));
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(HEADER_CRC_OFFSET, crc, true);
  }
  return bytes;
}

/** A JSON value a parser might not expect where it expects another. */
function oddValue(rng: Rng): unknown {
  return pick(rng, [
    () => null,
    () => rng.nextFloat() < 0.5,
    () => pick(rng, [0, -1, 1, 1.5, -0, 2 ** 24, 2 ** 32, 2 ** 53 + 2, 1e308, -1e308]),
    () => rng.nextUint32() - 2 ** 31,
    () => "",
    () => "x".repeat(rng.nextInt(5000)),
    () => String.fromCharCode(...randomBytes(rng, 1 + rng.nextInt(16))),
    () => "../../etc/passwd",
    () => [],
    () => Array.from({ length: 1 + rng.nextInt(4) }, () => rng.nextInt(1000)),
    () => ({}),
    // As JSON.parse makes it: an own property named __proto__.
    () => JSON.parse('{"__proto__": {"polluted": true}, "constructor": "x"}'),
  ])();
}

/** Every container node on the way down, with the key that leads to each child. */
function nodes(value: unknown, into: { parent: object; key: string | number }[] = []) {
  if (value && typeof value === "object") {
    const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
    for (const key of keys) {
      into.push({ parent: value, key });
      nodes((value as Record<string | number, unknown>)[key], into);
    }
  }
  return into;
}

/** A mutation of a parsed JSON value: a node replaced, dropped, added to or duplicated. */
function mutateValue(rng: Rng, value: unknown): unknown {
  const copy = structuredClone(value);
  const all = nodes(copy);
  if (all.length === 0) return oddValue(rng);
  const { parent, key } = pick(rng, all);
  const record = parent as Record<string | number, unknown>;
  const r = rng.nextFloat();
  if (r < 0.5) record[key] = oddValue(rng);
  else if (r < 0.65) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete record[key];
  } else if (r < 0.8) {
    if (Array.isArray(parent)) parent.push(parent[rng.nextInt(parent.length)]);
    else record[`extra${rng.nextInt(10)}`] = oddValue(rng);
  } else if (r < 0.9 && typeof record[key] === "number") {
    record[key] = (record[key] as number) + pick(rng, [-1, 1, 0.5, 2 ** 31]);
  } else {
    record[key] = structuredClone(pick(rng, all).parent);
  }
  return copy;
}

const UTF8 = new TextEncoder();
const TEXT = new TextDecoder();

/**
 * One JSON input: 70% one or two value mutations of a valid document, 30% a byte mutation of its
 * text that still parses as JSON (JSON.parse rejecting text is not the parser under test), falling
 * back to a value mutation when a few tries do not parse.
 */
export function mutateJson(rng: Rng, seeds: readonly unknown[]): unknown {
  const seed = pick(rng, seeds);
  if (rng.nextFloat() < 0.3) {
    const text = [UTF8.encode(JSON.stringify(seed))];
    for (let tries = 0; tries < 4; tries++) {
      try {
        return JSON.parse(TEXT.decode(mutateBytes(rng, text)));
      } catch {
        // not JSON any more: try another mutation
      }
    }
  }
  let out = mutateValue(rng, seed);
  if (rng.nextFloat() < 0.3) out = mutateValue(rng, out);
  return out;
}
