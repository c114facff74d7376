/**
 * The Python reader (clients/python/revq_tokens.py) against what the TypeScript code writes: valid
 * streams of every bit width, the JSON form and .npy files, and damaged ones made as the parser's
 * own tests and the fuzz damage them. For each, the TypeScript reader's verdict (ids or an error
 * code) goes into cases.json; the Python tests read every file and must reach the same verdict.
 *
 * python3 with numpy is required (CI installs Debian's python3-numpy): without it this test fails.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mutateJson, mutateTokenStream } from "../../bench/lib/fuzz/mutate.ts";
import { DATASET_FILES } from "../../cli/src/dataset-encode.ts";
import type { RecordIndex, TokenShardManifest } from "../../shared/src/api/jobs.ts";
import { FormatError } from "../../shared/src/errors.ts";
import { crc32 } from "../../shared/src/format/crc32.ts";
import { writeNpy } from "../../shared/src/format/npy.ts";
import { readTokenNpy, writeTokenNpy } from "../../shared/src/format/token-convert.ts";
import { readTokenJson, writeTokenJson } from "../../shared/src/format/token-json.ts";
import {
  type DecodedTokens,
  readTokenStream,
  type TokenStreamHeader,
  type TokenStreamParams,
  writeTokenStream,
} from "../../shared/src/format/token-stream.ts";
import { tokenShardName } from "../../shared/src/protocol/bucket-keys.ts";
import { Rng } from "../../shared/src/quant/rng.ts";

const PYTHON_DIR = resolve(import.meta.dirname, "../../clients/python");
const HASH = "0123456789abcdef".repeat(4);
const FUZZ_INPUTS = 400;

type Kind = "stream" | "json" | "npy";
type Case = {
  file: string;
  kind: Kind;
  /** The TypeScript reader's FormatError code, or null when it reads the input. */
  code: string | null;
  header: Record<string, unknown> | null;
  /** A .npy of the ids the TypeScript reader got, as uint32 (N, T). */
  idsFile: string | null;
  tokensPerRecord: number;
  codesPerGroup: number;
};

function params(tokensPerRecord: number, codesPerGroup: number, groups = 1): TokenStreamParams {
  return { tokenizerHash: HASH, tokensPerRecord, codesPerGroup, groups };
}

function idsFor(p: TokenStreamParams, records: number, seed: number): Uint32Array {
  const rng = new Rng(seed);
  // 0 and K - 1 often: the edges of the packing.
  return Uint32Array.from({ length: records * p.tokensPerRecord }, () => {
    const r = rng.nextFloat();
    return r < 0.1 ? 0 : r < 0.2 ? p.codesPerGroup - 1 : rng.nextInt(p.codesPerGroup);
  });
}

/** Valid streams: 1, 3, 12, 17 and 24 bits per id, K a power of two or not, N from 0, G > 1. */
const VALID: [TokenStreamParams, number][] = [
  [params(13, 2), 0],
  [params(13, 2), 1],
  [params(12, 5, 4), 2],
  [params(64, 4096, 8), 5],
  [params(16, 3000, 2), 3],
  [params(30, 2 ** 17, 3), 4],
  [params(7, 100_000, 7), 1],
  [params(8, 2 ** 24, 2), 3],
  [params(5, 2 ** 24 - 3, 5), 2],
  // More than one chunk of 2^20 ids in the Python reader.
  [params(1024, 16384, 16), 1100],
];

/** T = 5 ids of K = 100 (7 bits): 9-byte records, as in token-stream.test.ts. */
const SMALL = writeTokenStream(
  params(5, 100, 5),
  Uint32Array.of(0, 99, 42, 7, 63, 1, 2, 3, 4, 5, 98, 97, 96, 0, 1),
);

function edited(bytes: Uint8Array, edit: (b: Uint8Array, view: DataView) => void): Uint8Array {
  const out = bytes.slice();
  edit(out, new DataView(out.buffer));
  return out;
}

function resealHeader(bytes: Uint8Array): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(60, crc32(bytes.subarray(0, 60)), true);
}

/** Recomputes record i's CRC (of its index, then its packed ids) after a deliberate edit. */
function resealRecord(bytes: Uint8Array, stride: number, index: number): void {
  const start = 64 + index * stride;
  const indexBytes = new Uint8Array(4);
  new DataView(indexBytes.buffer).setUint32(0, index, true);
  const crc = crc32(bytes.subarray(start, start + stride - 4), crc32(indexBytes));
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(start + stride - 4, crc, true);
}

/** The damage token-stream.test.ts does to SMALL, each case named. */
function damagedStreams(): [string, Uint8Array][] {
  const header = (edit: (view: DataView) => void) =>
    edited(SMALL, (b, view) => {
      edit(view);
      resealHeader(b);
    });
  const record = (edit: (b: Uint8Array) => void, index: number) =>
    edited(SMALL, (b) => {
      edit(b);
      resealRecord(b, 9, index);
    });
  const truncations = [0, 2, 5, 7, 40, 63, 64, 70, SMALL.length - 1].map(
    (n): [string, Uint8Array] => [`truncated-${n}`, SMALL.slice(0, n)],
  );
  const bitFlips = Array.from({ length: SMALL.length * 8 }, (_, bit): [string, Uint8Array] => [
    `flip-${bit}`,
    edited(SMALL, (b) => {
      b[bit >> 3] ^= 1 << (bit & 7);
    }),
  ]);
  return [
    ...truncations,
    ...bitFlips,
    ["bad-magic", edited(SMALL, (b) => b.set([0x58], 0))],
    ["version-2", edited(SMALL, (b) => b.set([2], 4))],
    ["header-size-128", edited(SMALL, (b) => b.set([128], 6))],
    ["header-crc", edited(SMALL, (b) => b.set([b[61] ^ 0x80], 61))],
    ["reserved", header((v) => v.setUint8(54, 1))],
    ["bits-8", header((v) => v.setUint8(52, 8))],
    ["codes-129", header((v) => v.setUint32(44, 129, true))],
    ["codes-64", header((v) => v.setUint32(44, 64, true))],
    ["codes-1", header((v) => v.setUint32(44, 1, true))],
    ["codes-huge", header((v) => v.setUint32(44, 2 ** 24 + 1, true))],
    ["groups-2", header((v) => v.setUint32(48, 2, true))],
    ["groups-0", header((v) => v.setUint32(48, 0, true))],
    ["groups-10", header((v) => v.setUint32(48, 10, true))],
    ["tokens-0", header((v) => v.setUint32(40, 0, true))],
    ["tokens-65537", header((v) => v.setUint32(40, 65537, true))],
    ["records-4", header((v) => v.setUint32(56, 4, true))],
    ["records-2", header((v) => v.setUint32(56, 2, true))],
    ["records-4e9", header((v) => v.setUint32(56, 4e9, true))],
    ["trailing-1", Uint8Array.from([...SMALL, 0])],
    ["trailing-7", Uint8Array.from([...SMALL, 1, 2, 3, 4, 5, 6, 7])],
    ["empty-trailing", Uint8Array.from([...SMALL.subarray(0, 64), 1, 2])],
    ["id-127", record((b) => b.set([b[64] | 0x7f], 64), 0)],
    ["padding", record((b) => b.set([b[64 + 9 + 4] | 0x80], 64 + 9 + 4), 1)],
    [
      "swapped",
      edited(SMALL, (b) => {
        b.set(SMALL.subarray(73, 82), 64);
        b.set(SMALL.subarray(64, 73), 73);
      }),
    ],
    // The first bad record decides, whatever is wrong with later ones.
    [
      "padding-then-crc",
      edited(SMALL, (b) => {
        b[64 + 4] |= 0x80;
        resealRecord(b, 9, 0);
        b[73] ^= 1;
      }),
    ],
  ];
}

/** The TypeScript verdict on one input: the decoded tokens or the FormatError's code. */
function verdict(read: () => DecodedTokens): { code: string | null; decoded?: DecodedTokens } {
  try {
    return { code: null, decoded: read() };
  } catch (error) {
    if (error instanceof FormatError) return { code: error.code };
    throw error;
  }
}

function headerFields(header: TokenStreamHeader) {
  const { tokenizerHash, tokensPerRecord, codesPerGroup, groups, bitsPerToken, recordCount } =
    header;
  return { tokenizerHash, tokensPerRecord, codesPerGroup, groups, bitsPerToken, recordCount };
}

/** Writes the inputs and their verdicts into `dir`; returns the cases. */
function writeCases(dir: string): Case[] {
  const cases: Case[] = [];
  const add = (
    name: string,
    kind: Kind,
    bytes: Uint8Array,
    read: () => DecodedTokens,
    // What read_token_npy is told (a .npy carries no header); unused for the other kinds.
    shape = { tokensPerRecord: 0, codesPerGroup: 0 },
  ) => {
    const file = `${cases.length}-${name}.${kind === "stream" ? "rvqt" : kind}`;
    writeFileSync(join(dir, file), bytes);
    const { code, decoded } = verdict(read);
    let idsFile: string | null = null;
    if (decoded !== undefined) {
      idsFile = `${file}.ids.npy`;
      const shapeOf = [decoded.header.recordCount, decoded.header.tokensPerRecord];
      writeFileSync(join(dir, idsFile), writeNpy(decoded.tokens, shapeOf));
    }
    const header = decoded !== undefined && kind !== "npy" ? headerFields(decoded.header) : null;
    cases.push({ file, kind, code, header, idsFile, ...shape });
  };
  const addStream = (name: string, bytes: Uint8Array) =>
    add(name, "stream", bytes, () => readTokenStream(bytes));
  const addJson = (name: string, value: unknown) =>
    add(name, "json", new TextEncoder().encode(JSON.stringify(value)), () => readTokenJson(value));
  const addNpy = (name: string, bytes: Uint8Array, p: TokenStreamParams) =>
    add(name, "npy", bytes, () => readTokenNpy(bytes, p), p);

  const valid = VALID.map(([p, n], i) => writeTokenStream(p, idsFor(p, n, i + 1)));
  for (const [i, bytes] of valid.entries()) addStream(`valid-${i}`, bytes);
  addStream("small", SMALL);
  for (const [name, bytes] of damagedStreams()) addStream(name, bytes);
  const rng = new Rng(13);
  const fuzzSeeds = [SMALL, ...valid.slice(0, -1)];
  for (let i = 0; i < FUZZ_INPUTS; i++) addStream(`fuzz-${i}`, mutateTokenStream(rng, fuzzSeeds));

  for (const [name, value] of jsonCases()) addJson(name, value);
  const jsonSeeds = VALID.slice(0, 5).map(([p, n], i) => writeTokenJson(p, idsFor(p, n, i + 1)));
  for (let i = 0; i < FUZZ_INPUTS / 4; i++) {
    addJson(`fuzz-${i}`, mutateJson(rng, jsonSeeds));
  }
  for (const [name, bytes] of npyCases()) addNpy(name, bytes, NPY_PARAMS);
  writeFileSync(join(dir, "cases.json"), JSON.stringify(cases));
  return cases;
}

function jsonCases(): [string, unknown][] {
  const p = params(4, 10, 2);
  const good = writeTokenJson(p, Uint32Array.of(0, 9, 3, 4, 5, 6, 7, 8));
  const withRecords = (records: unknown) => ({ ...good, records });
  return [
    ["good", good],
    ["empty", withRecords([])],
    ["id-equal-k", withRecords([[0, 10, 1, 1]])],
    ["id-negative", withRecords([[0, -1, 1, 1]])],
    ["id-fraction", withRecords([[0, 1.5, 1, 1]])],
    ["short-record", withRecords([[0, 1, 1]])],
    ["records-not-array", withRecords({})],
    ["groups-3", { ...good, groups: 3 }],
    ["groups-0", { ...good, groups: 0 }],
    ["extra-key", { ...good, extra: 1 }],
    ["uppercase-hash", { ...good, tokenizer: HASH.toUpperCase() }],
    ["version-2", { ...good, version: 2 }],
    ["codes-1", { ...good, codesPerGroup: 1 }],
    ["format-bool", { ...good, format: true }],
  ];
}

const NPY_PARAMS = params(4, 10);

function npyCases(): [string, Uint8Array][] {
  const good = writeTokenNpy(NPY_PARAMS, Uint32Array.of(0, 9, 3, 4, 5, 6, 7, 8));
  // latin1 maps bytes to characters one to one, so the magic's 0x93 survives the edit.
  const text = (bytes: Uint8Array, from: string, to: string) =>
    Uint8Array.from(Buffer.from(Buffer.from(bytes).toString("latin1").replace(from, to), "latin1"));
  return [
    ["good", good],
    ["int64", writeNpy(BigInt64Array.of(1n, 2n, 3n, 4n), [1, 4])],
    ["uint8", writeNpy(Uint8Array.of(1, 2, 3, 4, 9, 9, 9, 9), [2, 4])],
    ["empty", writeNpy(new Int32Array(0), [0, 4])],
    ["float32", writeNpy(Float32Array.of(1, 2, 3, 4), [1, 4])],
    ["shape-5", writeNpy(Int32Array.of(1, 2, 3, 4, 5), [1, 5])],
    ["one-dim", writeNpy(Int32Array.of(1, 2, 3, 4), [4])],
    ["id-10", writeNpy(Int32Array.of(1, 2, 10, 4), [1, 4])],
    ["id-negative", writeNpy(Int32Array.of(1, -2, 3, 4), [1, 4])],
    ["int64-huge", writeNpy(BigInt64Array.of(1n, 2n ** 40n, 3n, 4n), [1, 4])],
    ["truncated-data", good.slice(0, good.length - 1)],
    ["truncated-header", good.slice(0, 9)],
    ["bad-magic", edited(good, (b) => b.set([0x94], 0))],
    ["version-4", edited(good, (b) => b.set([4], 6))],
    ["fortran", text(good, "'fortran_order': False", "'fortran_order': True ")],
    ["big-endian", text(good, "'<i4'", "'>i4'")],
    ["complex", text(good, "'<i4'", "'<c8'")],
  ];
}

/** The error codes the cases must reach, for each kind of input. */
const CHECKS: Record<Kind, string[]> = {
  stream: [
    "bad-magic",
    "unsupported-version",
    "bad-header-size",
    "truncated",
    "bad-header-crc",
    "reserved-nonzero",
    "bad-tokens-per-record",
    "bad-codes-per-group",
    "bad-groups",
    "bits-mismatch",
    "trailing-bytes",
    "bad-record-crc",
    "nonzero-padding",
    "token-out-of-range",
  ],
  json: ["invalid", "bad-groups", "bad-token-count", "token-out-of-range"],
  npy: [
    "bad-magic",
    "unsupported-version",
    "truncated",
    "fortran-order",
    "big-endian",
    "unsupported-dtype",
    "length-mismatch",
    "bad-token-dtype",
    "bad-token-shape",
    "token-out-of-range",
  ],
};

type DatasetCase = {
  folder: string;
  /** The code open_dataset (or reading its records) must give, or null for a good folder. */
  code: string | null;
  idsFile: string | null;
  images: RecordIndex["records"];
};

/**
 * Dataset output folders as revq tokenize --dataset writes them (cli/src/dataset-encode.ts): a
 * good one of three shards (4, 4 and 2 records, an upload's and a prefix's images), and damaged
 * copies, each with the code the Python reader must give.
 */
function writeDatasetCases(dir: string): DatasetCase[] {
  const p = params(6, 300, 2);
  const sizes = [4, 4, 2];
  const ids = idsFor(p, 10, 77);
  const shards = sizes.map((n, i) => {
    const first = sizes.slice(0, i).reduce((a, b) => a + b, 0);
    return writeTokenStream(p, ids.subarray(first * 6, (first + n) * 6));
  });
  const firsts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  const manifest: TokenShardManifest = {
    format: "revq.token-shards/v1",
    job: "job_01m8d0fxvcpfrrd0dgccvp9czy",
    tokenizerHash: HASH,
    dataset: "dst_01m8d0fxvcpfrrd0dgccvp9czy",
    listingHash: "ab".repeat(32),
    recordCount: 10,
    shardSize: 4,
    tokensPerRecord: 6,
    codesPerGroup: 300,
    groups: 2,
    bitsPerToken: 9,
    shards: shards.map((bytes, index) => ({
      index,
      firstRecord: firsts[index],
      records: sizes[index],
      bytes: bytes.length,
      etag: `etag-${index}`,
    })),
  };
  const images = Array.from({ length: 10 }, (_, record) => ({
    record,
    shard: Math.floor(record / 4),
    ...(record < 5 ? { imageId: `img_${record}` } : { file: `photos/${record}.png` }),
  }));
  const index: RecordIndex = {
    format: "revq.record-index/v1",
    job: manifest.job,
    dataset: manifest.dataset,
    records: images,
  };
  writeFileSync(join(dir, "dataset-ids.npy"), writeNpy(ids, [10, 6]));
  const cases: DatasetCase[] = [];
  const add = (
    name: string,
    code: string | null,
    edit: (files: Map<string, Uint8Array | unknown>) => void = () => {},
  ) => {
    const files = new Map<string, Uint8Array | unknown>([
      [DATASET_FILES.manifest, structuredClone(manifest)],
      [DATASET_FILES.records, structuredClone(index)],
      ...shards.map((bytes, i): [string, Uint8Array] => [tokenShardName(i), bytes.slice()]),
    ]);
    edit(files);
    const folder = `dataset-${name}`;
    mkdirSync(join(dir, folder));
    for (const [file, content] of files) {
      const bytes =
        content instanceof Uint8Array ? content : new TextEncoder().encode(JSON.stringify(content));
      writeFileSync(join(dir, folder, file), bytes);
    }
    cases.push({ folder, code, idsFile: code === null ? "dataset-ids.npy" : null, images });
  };
  type Files = Map<string, Uint8Array | unknown>;
  const manifestOf = (files: Files) => files.get(DATASET_FILES.manifest) as TokenShardManifest;
  add("good", null);
  add("no-manifest", "bad-manifest", (f) => f.delete(DATASET_FILES.manifest));
  add("manifest-not-json", "bad-manifest", (f) =>
    f.set(DATASET_FILES.manifest, new Uint8Array([123, 0])),
  );
  add("manifest-format", "bad-manifest", (f) => {
    manifestOf(f).format = "revq.token-shards/v0" as "revq.token-shards/v1";
  });
  add("shards-overlap", "bad-manifest", (f) => {
    manifestOf(f).shards[1].firstRecord = 3;
  });
  add("records-short", "bad-manifest", (f) => {
    manifestOf(f).recordCount = 11;
  });
  add("no-index", "bad-index", (f) => f.delete(DATASET_FILES.records));
  add("index-short", "bad-index", (f) => {
    (f.get(DATASET_FILES.records) as RecordIndex).records.pop();
  });
  add("index-other-job", "bad-index", (f) => {
    (f.get(DATASET_FILES.records) as RecordIndex).job = "job_other";
  });
  add("shard-missing", "shard-missing", (f) => f.delete(tokenShardName(2)));
  add("shard-other-tokenizer", "shard-mismatch", (f) => {
    manifestOf(f).tokenizerHash = "cd".repeat(32);
  });
  add("shard-swapped", "shard-mismatch", (f) => {
    const [a, c] = [f.get(tokenShardName(0)), f.get(tokenShardName(2))];
    f.set(tokenShardName(0), c);
    f.set(tokenShardName(2), a);
  });
  add("shard-truncated", "truncated", (f) => {
    f.set(tokenShardName(1), shards[1].slice(0, shards[1].length - 1));
  });
  add("shard-record-flipped", "bad-record-crc", (f) => {
    const bytes = f.get(tokenShardName(1)) as Uint8Array;
    bytes[64 + 1] ^= 0x10;
  });
  writeFileSync(join(dir, "dataset-cases.json"), JSON.stringify(cases));
  return cases;
}

describe("the Python reader", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "revq-python-reader-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("has python3 with numpy (CI: apt-get install -y python3-numpy)", () => {
    const probe = spawnSync("python3", ["-c", "import numpy; print(numpy.__version__)"], {
      encoding: "utf8",
    });
    expect(
      probe.error === undefined && probe.status === 0,
      `python3 with numpy is needed to test clients/python: ${probe.error?.message ?? probe.stderr}` +
        " (install it with apt-get install -y python3-numpy)",
    ).toBe(true);
  });

  it("reads every input as the TypeScript reader does: the same ids or the same error code; and dataset folders", () => {
    const cases = writeCases(dir);
    const datasetCases = writeDatasetCases(dir);
    const run = spawnSync("python3", ["-m", "unittest", "-v", "test_revq_tokens"], {
      cwd: PYTHON_DIR,
      env: { ...process.env, REVQ_GOLDEN_DIR: dir, PYTHONDONTWRITEBYTECODE: "1" },
      encoding: "utf8",
    });
    expect(run.status, `python3 -m unittest failed:\n${run.stderr}${run.stdout}`).toBe(0);
    const results: Record<string, { code: string | null }> = JSON.parse(
      readFileSync(join(dir, "results.json"), "utf8"),
    );
    const datasetResults: Record<string, { code: string | null }> = JSON.parse(
      readFileSync(join(dir, "dataset-results.json"), "utf8"),
    );
    expect(
      datasetCases
        .filter((c) => datasetResults[c.folder]?.code !== c.code)
        .map((c) => `${c.folder}: wanted ${c.code}, Python ${datasetResults[c.folder]?.code}`),
    ).toEqual([]);
    const mismatches = cases.filter((c) => results[c.file]?.code !== c.code);
    expect(
      mismatches.map((c) => `${c.file}: TS ${c.code}, Python ${results[c.file]?.code}`),
    ).toEqual([]);
    // The damage must reach every check of the readers, not only the first few.
    const reached = new Set(cases.map((c) => `${c.kind} ${c.code}`));
    const unreached = Object.entries(CHECKS).flatMap(([kind, codes]) =>
      codes.map((code) => `${kind} ${code}`).filter((check) => !reached.has(check)),
    );
    expect(unreached).toEqual([]);
  }, 120_000);
});
