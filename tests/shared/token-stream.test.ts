import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../shared/src/errors.ts";
import type { ByteRange } from "../../shared/src/format/byte-range.ts";
import { crc32 } from "../../shared/src/format/crc32.ts";
import { joinRecords, splitRecords, tokensAsInt32 } from "../../shared/src/format/token-convert.ts";
import {
  bitsForCodes,
  encodeHeader,
  encodeRecord,
  makeTokenStreamHeader,
  readRecord,
  readTokenStream,
  readTokenStreamHeader,
  readTokenStreamRecords,
  recordByteRange,
  recordPayloadBytes,
  recordStride,
  TOKEN_STREAM_HEADER_BYTES,
  TOKEN_STREAM_MEDIA_TYPE,
  TokenStreamDecoder,
  type TokenStreamHeader,
  type TokenStreamParams,
  tokenStreamByteLength,
  validateTokens,
  writeTokenStream,
} from "../../shared/src/format/token-stream.ts";
import { formatError } from "../helpers/format-error.ts";

const HASH = "0123456789abcdef".repeat(4);

function params(tokensPerRecord: number, codesPerGroup: number, groups = 1): TokenStreamParams {
  return { tokenizerHash: HASH, tokensPerRecord, codesPerGroup, groups };
}

/** Deterministic ids in [0, K) from a seed, with 0 and K-1 frequent (mulberry32). */
function randomTokens(count: number, codesPerGroup: number, seed: number): Uint32Array {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return Uint32Array.from({ length: count }, () => {
    const r = next();
    if (r < 0.1) return 0;
    if (r < 0.2) return codesPerGroup - 1;
    return Math.floor(next() * codesPerGroup);
  });
}

/** The FormatError `f` throws; fails the test if it throws anything else or nothing. */
/** Feeds `bytes` to a fresh decoder cut at `cuts`; returns the records and the decoder. */
function decodeInChunks(bytes: Uint8Array, cuts: number[]) {
  const decoder = new TokenStreamDecoder();
  const records: Uint32Array[] = [];
  const bounds = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)];
  bounds.push(bytes.length);
  for (let i = 0; i + 1 < bounds.length; i++) {
    records.push(...decoder.push(bytes.subarray(bounds[i], bounds[i + 1])));
  }
  return { decoder, records };
}

function streamOf(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const bounds = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)];
  bounds.push(bytes.length);
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i + 1 < bounds.length) {
        controller.enqueue(bytes.slice(bounds[i], bounds[i + 1]));
        i++;
      } else controller.close();
    },
  });
}

function sliceRange(bytes: Uint8Array, range: ByteRange): Uint8Array {
  return bytes.slice(range.offset, range.offset + range.length);
}

/** Recomputes the header CRC after a deliberate edit, so the check behind it is reached. */
function resealHeader(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  view.setUint32(60, crc32(bytes.subarray(0, 60)), true);
}

/** Recomputes record i's CRC (index then packed ids) after a deliberate edit. */
function resealRecord(bytes: Uint8Array, header: TokenStreamHeader, index: number): void {
  const { offset: start, length } = recordByteRange(header, index);
  const end = start + length;
  const indexBytes = new Uint8Array(4);
  new DataView(indexBytes.buffer).setUint32(0, index, true);
  const crc = crc32(bytes.subarray(start, end - 4), crc32(indexBytes));
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(end - 4, crc, true);
}

/** Configurations spanning the limits: K = 2, powers of two, non-powers, 2^24. */
const configurations = fc
  .record({
    tokensPerRecord: fc.oneof(fc.integer({ min: 1, max: 70 }), fc.constantFrom(256, 512, 1000)),
    codesPerGroup: fc.oneof(
      fc.constantFrom(2, 3, 4, 5, 255, 256, 257, 1000, 16384, 65535, 65536, 2 ** 24 - 1, 2 ** 24),
      fc.integer({ min: 2, max: 2 ** 24 }),
    ),
    recordCount: fc.integer({ min: 0, max: 6 }),
    seed: fc.integer(),
  })
  .chain((c) => {
    const divisors = Array.from({ length: c.tokensPerRecord }, (_, i) => i + 1).filter(
      (g) => c.tokensPerRecord % g === 0,
    );
    return fc.record({
      ...Object.fromEntries(Object.entries(c).map(([k, v]) => [k, fc.constant(v)])),
      groups: fc.constantFrom(...divisors),
    }) as fc.Arbitrary<typeof c & { groups: number }>;
  });

describe("crc32", () => {
  it("matches zlib's check values", () => {
    const text = (s: string) => new TextEncoder().encode(s);
    expect(crc32(text("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(text("hello world"))).toBe(0x0d4a1185);
    expect(crc32(text("The quick brown fox jumps over the lazy dog"))).toBe(0x414fa339);
  });

  it("matches a bit-at-a-time reference and chains like zlib.crc32(b, crc32(a))", () => {
    const reference = (data: Uint8Array) => {
      let crc = 0xffffffff;
      for (const byte of data) {
        crc ^= byte;
        for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
      }
      return (crc ^ 0xffffffff) >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
        const joined = Uint8Array.from([...a, ...b]);
        expect(crc32(joined)).toBe(reference(joined));
        expect(crc32(b, crc32(a))).toBe(crc32(joined));
      }),
    );
  });
});

describe("header fields", () => {
  it("bitsForCodes is ceil(log2 K)", () => {
    const cases = [
      [2, 1],
      [3, 2],
      [4, 2],
      [5, 3],
      [256, 8],
      [257, 9],
      [16384, 14],
      [16385, 15],
      [2 ** 24 - 1, 24],
      [2 ** 24, 24],
    ];
    for (const [k, bits] of cases) expect(bitsForCodes(k)).toBe(bits);
    for (const k of [0, 1, 2 ** 24 + 1, 2.5, Number.NaN]) {
      expect(formatError(() => bitsForCodes(k)).code).toBe("bad-codes-per-group");
    }
  });

  it("lays out a small stream byte for byte as the spec says", () => {
    // T = 3 ids of K = 5 codes: 3 bits each, 9 bits, 2 bytes of payload.
    const bytes = writeTokenStream(params(3, 5, 3), Uint32Array.of(1, 2, 4));
    expect(bytes.length).toBe(64 + 2 + 4);
    const view = new DataView(bytes.buffer);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe("RVQT");
    expect(view.getUint16(4, true)).toBe(1);
    expect(view.getUint16(6, true)).toBe(64);
    expect(Array.from(bytes.subarray(8, 40), (b) => b.toString(16).padStart(2, "0")).join("")).toBe(
      HASH,
    );
    expect(view.getUint32(40, true)).toBe(3);
    expect(view.getUint32(44, true)).toBe(5);
    expect(view.getUint32(48, true)).toBe(3);
    expect(bytes[52]).toBe(3);
    expect(Array.from(bytes.subarray(53, 56))).toEqual([0, 0, 0]);
    expect(view.getUint32(56, true)).toBe(1);
    expect(view.getUint32(60, true)).toBe(crc32(bytes.subarray(0, 60)));
    // ids 1, 2, 4 LSB-first: bits 0, 4 and 8 set.
    expect(Array.from(bytes.subarray(64, 66))).toEqual([0x11, 0x01]);
    expect(view.getUint32(66, true)).toBe(crc32(Uint8Array.of(0, 0, 0, 0, 0x11, 0x01)));
  });

  it("exposes the sizes and the media type", () => {
    const header = makeTokenStreamHeader(params(512, 16384, 512), 10);
    expect(header).toEqual({
      version: 1,
      tokenizerHash: HASH,
      tokensPerRecord: 512,
      codesPerGroup: 16384,
      groups: 512,
      bitsPerToken: 14,
      recordCount: 10,
    });
    expect(recordPayloadBytes(header)).toBe(896);
    expect(recordStride(header)).toBe(900);
    expect(tokenStreamByteLength(header)).toBe(64 + 9000);
    expect(recordByteRange(header, 0)).toEqual({ offset: 64, length: 900 });
    expect(recordByteRange(header, 9)).toEqual({ offset: 64 + 9 * 900, length: 900 });
    expect(TOKEN_STREAM_HEADER_BYTES).toBe(64);
    expect(TOKEN_STREAM_MEDIA_TYPE).toBe("application/vnd.revq.tokens");
    for (const i of [-1, 10, 1.5]) {
      expect(formatError(() => recordByteRange(header, i)).code).toBe("record-index-out-of-range");
    }
  });

  it("keeps the overhead of 1000 records x 512 tokens x 14 bits under 1%", () => {
    const header = makeTokenStreamHeader(params(512, 2 ** 14, 512), 1000);
    const packed = (1000 * 512 * 14) / 8;
    const overhead = tokenStreamByteLength(header) - packed;
    expect(overhead).toBe(64 + 1000 * 4);
    expect(overhead / packed).toBeLessThan(0.01);
    expect(overhead / packed).toBeCloseTo(4064 / 896000, 10);
  });
});

describe("round trips", () => {
  it("whole buffer, by record range, incremental and ReadableStream all give the same ids", async () => {
    await fc.assert(
      fc.asyncProperty(
        configurations,
        fc.array(fc.nat(), { maxLength: 12 }),
        async (config, cutSeeds) => {
          const p = params(config.tokensPerRecord, config.codesPerGroup, config.groups);
          const count = config.recordCount * config.tokensPerRecord;
          const tokens = randomTokens(count, config.codesPerGroup, config.seed);
          const bytes = writeTokenStream(p, tokens);

          const whole = readTokenStream(bytes);
          expect(whole.tokens).toEqual(tokens);
          expect(whole.header).toEqual(makeTokenStreamHeader(p, config.recordCount));
          expect(bytes.length).toBe(tokenStreamByteLength(whole.header));

          const header = readTokenStreamHeader(bytes.subarray(0, 64));
          const byRange = splitRecords(tokens, config.tokensPerRecord).map((_, i) => {
            return readRecord(header, sliceRange(bytes, recordByteRange(header, i)), i);
          });
          expect(joinRecords(byRange, config.tokensPerRecord)).toEqual(tokens);

          const cuts = cutSeeds.map((c) => c % (bytes.length + 1));
          const { decoder, records } = decodeInChunks(bytes, cuts);
          expect(decoder.finish()).toEqual(whole.header);
          expect(joinRecords(records, config.tokensPerRecord)).toEqual(tokens);

          const streamed: Uint32Array[] = [];
          for await (const record of readTokenStreamRecords(streamOf(bytes, cuts))) {
            streamed.push(record);
          }
          expect(joinRecords(streamed, config.tokensPerRecord)).toEqual(tokens);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("handles the largest record: T = 65536 ids of 24 bits", () => {
    const p = params(65536, 2 ** 24, 65536);
    const tokens = randomTokens(2 * 65536, 2 ** 24, 7);
    const bytes = writeTokenStream(p, tokens);
    expect(bytes.length).toBe(64 + 2 * (196608 + 4));
    expect(readTokenStream(bytes).tokens).toEqual(tokens);
  });

  it("decodes a stream pushed one byte at a time, header getter appearing at byte 64", () => {
    const tokens = randomTokens(4 * 10, 1000, 3);
    const bytes = writeTokenStream(params(10, 1000, 5), tokens);
    const decoder = new TokenStreamDecoder();
    const records: Uint32Array[] = [];
    bytes.forEach((_, i) => {
      expect(decoder.header === undefined).toBe(i < 64);
      records.push(...decoder.push(bytes.subarray(i, i + 1)));
    });
    expect(decoder.header?.recordCount).toBe(4);
    expect(decoder.recordsDecoded).toBe(4);
    decoder.finish();
    expect(joinRecords(records, 10)).toEqual(tokens);
  });

  it("accepts Int32Array tokens and records as number arrays", () => {
    const tokens = randomTokens(3 * 8, 300, 11);
    const p = params(8, 300, 2);
    expect(writeTokenStream(p, tokensAsInt32(tokens))).toEqual(writeTokenStream(p, tokens));
    const header = makeTokenStreamHeader(p, 3);
    const manual = [
      encodeHeader(header),
      ...splitRecords(tokens, 8).map((ids, i) => encodeRecord(header, i, Array.from(ids))),
    ];
    expect(Uint8Array.from(manual.flatMap((part) => [...part]))).toEqual(
      writeTokenStream(p, tokens),
    );
  });
});

describe("corruption", () => {
  // T = 5 ids of K = 100 codes (7 bits): 5-byte payloads, 9-byte records, 91 bytes in all.
  const smallParams = params(5, 100, 5);
  const smallTokens = Uint32Array.of(0, 99, 42, 7, 63, 1, 2, 3, 4, 5, 98, 97, 96, 0, 1);
  const small = writeTokenStream(smallParams, smallTokens);
  const smallHeader = readTokenStreamHeader(small);

  it("detects every single-bit flip, in the whole-buffer and the incremental reader", () => {
    expect(small.length).toBe(91);
    for (let bit = 0; bit < small.length * 8; bit++) {
      const corrupt = small.slice();
      corrupt[bit >> 3] ^= 1 << (bit & 7);
      formatError(() => readTokenStream(corrupt));
      formatError(() => {
        const { decoder } = decodeInChunks(corrupt, [bit >> 4]);
        decoder.finish();
      });
    }
  });

  it("detects random bit flips in a larger stream", () => {
    const tokens = randomTokens(20 * 512, 16384, 5);
    const bytes = writeTokenStream(params(512, 16384, 512), tokens);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        const corrupt = bytes.slice();
        corrupt[bit >> 3] ^= 1 << (bit & 7);
        formatError(() => readTokenStream(corrupt));
      }),
      { numRuns: 500 },
    );
  });

  it("reports truncation at every byte offset", () => {
    for (let length = 0; length < small.length; length++) {
      const prefix = small.subarray(0, length);
      expect(formatError(() => readTokenStream(prefix)).code).toBe("truncated");
      const { decoder, records } = decodeInChunks(prefix, [length >> 1]);
      const error = formatError(() => decoder.finish());
      expect(error.code).toBe("truncated");
      if (length >= 64) {
        const done = Math.floor((length - 64) / 9);
        expect(records.length).toBe(done);
        expect(error.message).toContain(`after ${done} of 3 records`);
      }
    }
  });

  it("rejects trailing bytes in both readers", () => {
    const longer = Uint8Array.from([...small, 0]);
    expect(formatError(() => readTokenStream(longer)).code).toBe("trailing-bytes");
    expect(formatError(() => decodeInChunks(longer, [])).code).toBe("trailing-bytes");
    const empty = writeTokenStream(smallParams, new Uint32Array(0));
    const emptyLonger = Uint8Array.from([...empty, 1, 2]);
    expect(formatError(() => readTokenStream(emptyLonger)).code).toBe("trailing-bytes");
    expect(formatError(() => decodeInChunks(emptyLonger, [64])).code).toBe("trailing-bytes");
  });

  it("rejects a wrong magic, version or header size before the CRC", () => {
    const wrongMagic = small.slice();
    wrongMagic[0] = "X".charCodeAt(0);
    expect(formatError(() => readTokenStream(wrongMagic)).code).toBe("bad-magic");
    const version2 = small.slice();
    version2[4] = 2;
    const error = formatError(() => readTokenStream(version2));
    expect(error.code).toBe("unsupported-version");
    expect(error.message).toContain("version 2");
    const headerSize = small.slice();
    headerSize[6] = 128;
    expect(formatError(() => readTokenStream(headerSize)).code).toBe("bad-header-size");
  });

  it("lets the incremental reader fail on a wrong magic or version from the first bytes", () => {
    expect(
      formatError(() => new TokenStreamDecoder().push(Uint8Array.of(0x52, 0x56, 0x51, 0x55))).code,
    ).toBe("bad-magic");
    expect(
      formatError(() => new TokenStreamDecoder().push(small.subarray(0, 3).map((b) => b + 1))).code,
    ).toBe("bad-magic");
    const version9 = small.slice(0, 6);
    version9[4] = 9;
    expect(formatError(() => new TokenStreamDecoder().push(version9)).code).toBe(
      "unsupported-version",
    );
  });

  it("rejects a bad header CRC", () => {
    const corrupt = small.slice();
    corrupt[61] ^= 0x80;
    expect(formatError(() => readTokenStream(corrupt)).code).toBe("bad-header-crc");
  });

  it("checks every header field behind a valid CRC", () => {
    const cases: [string, (view: DataView) => void][] = [
      ["reserved-nonzero", (v) => v.setUint8(54, 1)],
      ["bits-mismatch", (v) => v.setUint8(52, 8)],
      ["bits-mismatch", (v) => v.setUint32(44, 129, true)],
      ["bits-mismatch", (v) => v.setUint32(44, 64, true)],
      ["bad-groups", (v) => v.setUint32(48, 2, true)],
      ["bad-groups", (v) => v.setUint32(48, 0, true)],
      ["bad-groups", (v) => v.setUint32(48, 10, true)],
      ["bad-tokens-per-record", (v) => v.setUint32(40, 0, true)],
      ["bad-tokens-per-record", (v) => v.setUint32(40, 65537, true)],
      ["bad-codes-per-group", (v) => v.setUint32(44, 1, true)],
      ["bad-codes-per-group", (v) => v.setUint32(44, 2 ** 24 + 1, true)],
      ["truncated", (v) => v.setUint32(56, 4, true)],
      ["trailing-bytes", (v) => v.setUint32(56, 2, true)],
    ];
    for (const [code, edit] of cases) {
      const corrupt = small.slice();
      edit(new DataView(corrupt.buffer));
      resealHeader(corrupt);
      expect(formatError(() => readTokenStream(corrupt)).code, code).toBe(code);
      expect(formatError(() => decodeInChunks(corrupt, [30]).decoder.finish()).code, code).toBe(
        code,
      );
    }
  });

  it("fails fast, without allocating, on a header claiming 4e9 records over 1 KB", () => {
    const header = makeTokenStreamHeader(params(65536, 2 ** 24, 1), 4e9);
    const bytes = new Uint8Array(1024);
    bytes.set(encodeHeader(header));
    const started = performance.now();
    const error = formatError(() => readTokenStream(bytes));
    expect(performance.now() - started).toBeLessThan(50);
    expect(error.code).toBe("truncated");
    expect(error.message).toContain("4000000000 records");
    expect(error.message).toContain("1024 bytes");

    const decoder = new TokenStreamDecoder();
    expect(decoder.push(bytes)).toEqual([]);
    expect(formatError(() => decoder.finish()).message).toContain("after 0 of 4000000000 records");
  });

  it("rejects ids >= K and nonzero padding even behind a valid record CRC", () => {
    // K = 100 needs 7 bits, so 100..127 fit the bits but are not codes.
    const outOfRange = small.slice();
    outOfRange[64] |= 0x7f; // first id of record 0 becomes 127
    resealRecord(outOfRange, smallHeader, 0);
    const error = formatError(() => readTokenStream(outOfRange));
    expect(error.code).toBe("token-out-of-range");
    expect(error.message).toContain("record 0, token 0: id 127");
    const record0 = sliceRange(outOfRange, recordByteRange(smallHeader, 0));
    expect(formatError(() => readRecord(smallHeader, record0, 0)).code).toBe("token-out-of-range");

    // 5 ids x 7 bits = 35 bits: the top 5 bits of byte 4 are padding.
    const padded = small.slice();
    padded[64 + 9 + 4] |= 0x80;
    resealRecord(padded, smallHeader, 1);
    expect(formatError(() => readTokenStream(padded)).code).toBe("nonzero-padding");
  });

  it("detects swapped and duplicated records through the index in the record CRC", () => {
    const [a, b] = [recordByteRange(smallHeader, 0), recordByteRange(smallHeader, 1)];
    const swapped = small.slice();
    swapped.set(sliceRange(small, b), a.offset);
    swapped.set(sliceRange(small, a), b.offset);
    expect(formatError(() => readTokenStream(swapped)).code).toBe("bad-record-crc");
    const duplicated = small.slice();
    duplicated.set(sliceRange(small, a), b.offset);
    expect(formatError(() => readTokenStream(duplicated)).code).toBe("bad-record-crc");
    expect(formatError(() => readRecord(smallHeader, sliceRange(small, b), 0)).code).toBe(
      "bad-record-crc",
    );
  });

  it("readRecord insists on exactly one record's bytes and a valid index", () => {
    const record2 = sliceRange(small, recordByteRange(smallHeader, 2));
    expect(Array.from(readRecord(smallHeader, record2, 2))).toEqual([98, 97, 96, 0, 1]);
    expect(formatError(() => readRecord(smallHeader, record2.subarray(1), 2)).code).toBe(
      "bad-record-length",
    );
    expect(formatError(() => readRecord(smallHeader, record2, 3)).code).toBe(
      "record-index-out-of-range",
    );
  });

  it("keeps failing after an error", () => {
    const decoder = new TokenStreamDecoder();
    const first = formatError(() => decoder.push(Uint8Array.of(1, 2, 3)));
    expect(formatError(() => decoder.push(small))).toBe(first);
    expect(formatError(() => decoder.finish())).toBe(first);
  });
});

describe("readTokenStreamRecords", () => {
  const tokens = randomTokens(6 * 4, 50, 9);
  const bytes = writeTokenStream(params(4, 50, 2), tokens);

  it("returns the header when the stream is complete", async () => {
    const iterator = readTokenStreamRecords(streamOf(bytes, [10, 70]));
    const records: Uint32Array[] = [];
    for (;;) {
      const step = await iterator.next();
      if (step.done) {
        expect(step.value.recordCount).toBe(6);
        break;
      }
      records.push(step.value);
    }
    expect(joinRecords(records, 4)).toEqual(tokens);
  });

  it("cancels the source when the consumer stops early or the stream is bad", async () => {
    const cancelled: unknown[] = [];
    const source = (data: Uint8Array) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(data);
          controller.close();
        },
        cancel(reason) {
          cancelled.push(reason);
        },
      });
    // Chunks queued but never read are what cancel discards, so split the stream in two.
    const twoChunks = (data: Uint8Array) => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === 0) controller.enqueue(data.subarray(0, 64 + 4 * 6));
          else if (sent === 1) controller.enqueue(data.subarray(64 + 4 * 6));
          else controller.close();
          sent++;
        },
        cancel(reason) {
          cancelled.push(reason);
        },
      });
    };
    for await (const _ of readTokenStreamRecords(twoChunks(bytes))) break;
    expect(cancelled).toHaveLength(1);

    const truncated = bytes.subarray(0, bytes.length - 1);
    await expect(async () => {
      for await (const _ of readTokenStreamRecords(source(truncated))) {
        // drain
      }
    }).rejects.toThrow(FormatError);

    const corrupt = bytes.slice();
    corrupt[70] ^= 1;
    await expect(async () => {
      for await (const _ of readTokenStreamRecords(twoChunks(corrupt))) {
        // drain
      }
    }).rejects.toMatchObject({ code: "bad-record-crc" });
    expect(cancelled).toHaveLength(2);
  });
});

describe("writers validate", () => {
  it("rejects ids outside [0, K), wrong lengths, bad hashes and bad indices", () => {
    const p = params(4, 10, 2);
    expect(formatError(() => writeTokenStream(p, Uint32Array.of(0, 1, 2, 10))).code).toBe(
      "token-out-of-range",
    );
    expect(formatError(() => writeTokenStream(p, Int32Array.of(0, -1, 2, 3))).code).toBe(
      "token-out-of-range",
    );
    expect(formatError(() => writeTokenStream(p, Uint32Array.of(0, 1, 2))).code).toBe(
      "bad-token-count",
    );
    for (const tokenizerHash of [HASH.toUpperCase(), HASH.slice(1), `${HASH}0`, ""]) {
      expect(
        formatError(() => writeTokenStream({ ...p, tokenizerHash }, new Uint32Array(4))).code,
      ).toBe("bad-tokenizer-hash");
    }
    expect(formatError(() => writeTokenStream(params(6, 10, 4), new Uint32Array(6))).code).toBe(
      "bad-groups",
    );
    expect(formatError(() => writeTokenStream(params(0, 10, 1), new Uint32Array(0))).code).toBe(
      "bad-tokens-per-record",
    );

    const header = makeTokenStreamHeader(p, 2);
    expect(formatError(() => encodeRecord(header, 0, [1, 2, 3, 4.5])).code).toBe(
      "token-out-of-range",
    );
    expect(formatError(() => encodeRecord(header, 0, [1, 2, 3])).code).toBe("bad-token-count");
    expect(formatError(() => encodeRecord(header, 2, [1, 2, 3, 4])).code).toBe(
      "record-index-out-of-range",
    );
    expect(formatError(() => encodeHeader({ ...header, bitsPerToken: 5 })).code).toBe(
      "bits-mismatch",
    );
    expect(formatError(() => makeTokenStreamHeader(p, 2 ** 32)).code).toBe("bad-record-count");
    const error = formatError(() => validateTokens(p, Uint32Array.of(0, 1, 2, 3, 4, 5, 6, 11)));
    expect(error.message).toContain("record 1, token 3: id 11");
  });
});

describe("record conversions", () => {
  it("splits into views, joins into copies, views as Int32Array", () => {
    const tokens = Uint32Array.of(1, 2, 3, 4, 5, 6);
    const records = splitRecords(tokens, 3);
    expect(records.map((r) => Array.from(r))).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(records[1].buffer).toBe(tokens.buffer);
    const joined = joinRecords(records, 3);
    expect(joined).toEqual(tokens);
    expect(joined.buffer).not.toBe(tokens.buffer);
    expect(Array.from(tokensAsInt32(tokens))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(formatError(() => splitRecords(tokens, 4)).code).toBe("bad-token-count");
    expect(formatError(() => joinRecords([[1, 2]], 3)).code).toBe("bad-token-count");
  });
});
