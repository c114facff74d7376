/**
 * Every parser of untrusted bytes in the project, as a fuzz target: the shared formats (token
 * stream, token JSON and .npy, .npy, safetensors, manifest, dataset listing, bitpack) and the
 * edge's own (image headers, tar archives, Range headers, list cursors). Each parse calls what
 * the project calls on the same bytes; the edge's parsers refuse with HttpProblem, not FormatError.
 */
import { HttpProblem } from "../../../edge/src/problem.ts";
import { decodeCursor } from "../../../edge/src/services/cursor.ts";
import { readImageHeader } from "../../../edge/src/services/image-header.ts";
import { parseRange } from "../../../edge/src/services/objects/http-range.ts";
import { tarFiles } from "../../../edge/src/services/tar-files.ts";
import { FormatError } from "../../../shared/src/errors.ts";
import { packBits, unpackBits } from "../../../shared/src/format/bitpack.ts";
import { readNpy } from "../../../shared/src/format/npy.ts";
import {
  parseSafetensors,
  readTensor,
  toInt32Array,
} from "../../../shared/src/format/safetensors.ts";
import { readTokenNpy } from "../../../shared/src/format/token-convert.ts";
import { readTokenJson } from "../../../shared/src/format/token-json.ts";
import {
  readRecord,
  readTokenStream,
  readTokenStreamHeader,
  recordByteRange,
  TOKEN_STREAM_HEADER_BYTES,
  TokenStreamDecoder,
} from "../../../shared/src/format/token-stream.ts";
import { parseDatasetListing } from "../../../shared/src/protocol/dataset.ts";
import { parseManifest } from "../../../shared/src/protocol/manifest.ts";
import { sha256Hex } from "../../../shared/src/protocol/sha256.ts";
import type { Rng } from "../../../shared/src/quant/rng.ts";
import type { FuzzTarget } from "./harness.ts";
import { mutateBytes, mutateJson, mutateTokenStream } from "./mutate.ts";
import * as seeds from "./seeds.ts";

function bytesTarget(
  name: string,
  make: () => Uint8Array[] | Promise<Uint8Array[]>,
  parse: (bytes: Uint8Array) => unknown,
  refusal?: (error: unknown) => boolean,
): FuzzTarget<Uint8Array> {
  return {
    name,
    seeds: async () => make(),
    generate: mutateBytes,
    parse,
    size: (bytes) => bytes.length,
    show: (bytes) => Buffer.from(bytes).toString("base64"),
    refusal,
  };
}

function jsonTarget(
  name: string,
  make: () => unknown[],
  parse: (value: unknown) => unknown,
): FuzzTarget<unknown> {
  return {
    name,
    seeds: async () => make(),
    generate: mutateJson,
    parse,
    size: (value) => JSON.stringify(value)?.length ?? 0,
    show: (value) => JSON.stringify(value),
  };
}

/** Header-line strings: byte mutations of valid ones, read back as Latin-1 as headers are. */
function textTarget(
  name: string,
  valid: string[],
  parse: (text: string) => unknown,
): FuzzTarget<string> {
  const latin1 = (text: string) => Uint8Array.from(text, (ch) => ch.charCodeAt(0) & 0xff);
  return {
    name,
    seeds: async () => valid,
    generate: (rng, texts) =>
      String.fromCharCode(...mutateBytes(rng, texts.map(latin1)).subarray(0, 8192)),
    parse,
    size: (text) => text.length,
    show: (text) => text,
    refusal: isHttpProblem,
  };
}

const isHttpProblem = (error: unknown) => error instanceof HttpProblem;

/** A token stream target: mutations resealed. */
function streamTarget(
  name: string,
  make: () => Uint8Array[],
  parse: (bytes: Uint8Array) => unknown,
): FuzzTarget<Uint8Array> {
  return { ...bytesTarget(name, make, parse), generate: mutateTokenStream };
}

/** Cut points for a chunked read, from the input's own length: split anywhere, reproducibly. */
function chunks(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let step = (bytes.length % 61) + 1;
  for (let at = 0; at < bytes.length; at += step, step = ((step * 7) % 97) + 1) {
    out.push(bytes.subarray(at, at + step));
  }
  return out;
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const parts = chunks(bytes);
  return new ReadableStream({
    pull(controller) {
      const next = parts.shift();
      if (next) controller.enqueue(next.slice());
      else controller.close();
    },
  });
}

/** Records are read one at a time against a header verified before (the token download). */
const RECORD_STREAM = seeds.tokenStreams()[1];
const RECORD_HEADER = readTokenStreamHeader(RECORD_STREAM);

/** unpackBits takes a count and width from a verified header: both come with the bytes here. */
type Packed = { bytes: Uint8Array; count: number; bits: number };

const bitpack: FuzzTarget<Packed> = {
  name: "bitpack.unpackBits",
  seeds: async () =>
    [1, 5, 8, 12, 17, 24].map((bits) => {
      const count = 3 * bits + 1;
      const values = Uint32Array.from({ length: count }, (_, i) => (i * 2654435761) % 2 ** bits);
      return { bytes: packBits(values, bits), count, bits };
    }),
  generate: (rng: Rng, all: readonly Packed[]) => {
    const seed = all[rng.nextInt(all.length)];
    const bytes = mutateBytes(rng, [seed.bytes]);
    const r = rng.nextFloat();
    // Widths and counts the header checks would have let through, and some they would not.
    const bits = r < 0.2 ? rng.nextInt(34) - 1 : seed.bits;
    const count =
      r > 0.9
        ? [2 ** 31, 2 ** 40, -(2 ** 31)][rng.nextInt(3)]
        : r > 0.8
          ? rng.nextInt(4 * seed.count + 2) - 1
          : seed.count;
    return { bytes, count, bits };
  },
  parse: ({ bytes, count, bits }) => unpackBits(bytes, count, bits),
  size: ({ bytes }) => bytes.length,
  show: ({ bytes, count, bits }) =>
    JSON.stringify({ count, bits, bytes: Buffer.from(bytes).toString("base64") }),
};

// biome-ignore lint/suspicious/noExplicitAny: the targets have different input types
export const PARSER_TARGETS: FuzzTarget<any>[] = [
  streamTarget("token-stream.readTokenStream", seeds.tokenStreams, readTokenStream),
  streamTarget(
    "token-stream.readTokenStreamHeader",
    () => seeds.tokenStreams().map((s) => s.subarray(0, TOKEN_STREAM_HEADER_BYTES)),
    readTokenStreamHeader,
  ),
  streamTarget("token-stream.TokenStreamDecoder", seeds.tokenStreams, (bytes) => {
    const decoder = new TokenStreamDecoder();
    for (const chunk of chunks(bytes)) decoder.push(chunk);
    return decoder.finish();
  }),
  bytesTarget(
    "token-stream.readRecord",
    // Every record of the stream; only record 1's CRC fits the index read against.
    () =>
      [1, 0, 2].map((index) => {
        const { offset, length } = recordByteRange(RECORD_HEADER, index);
        return RECORD_STREAM.subarray(offset, offset + length);
      }),
    (bytes) => readRecord(RECORD_HEADER, bytes, 1),
  ),
  jsonTarget("token-json.readTokenJson", seeds.tokenJsons, readTokenJson),
  bytesTarget("token-npy.readTokenNpy", seeds.tokenNpys, (bytes) =>
    readTokenNpy(bytes, seeds.NPY_TOKENS),
  ),
  bytesTarget("npy.readNpy", seeds.npys, readNpy),
  bytesTarget("safetensors.parseSafetensors", seeds.safetensorsFiles, (bytes) => {
    const file = parseSafetensors(bytes);
    for (const name of file.tensors.keys()) {
      const tensor = readTensor(file, name);
      if (tensor.dtype.startsWith("I")) toInt32Array(tensor.data, name);
    }
  }),
  jsonTarget("manifest.parseManifest", seeds.manifests, parseManifest),
  // Checked against its own hash, as the worker does once the hash matched the key: the parse.
  bytesTarget("dataset.parseDatasetListing", seeds.datasetListings, async (bytes) =>
    parseDatasetListing(bytes, await sha256Hex(bytes)),
  ),
  bitpack,
  bytesTarget("edge.readImageHeader", seeds.images, readImageHeader),
  bytesTarget(
    "edge.tarFiles",
    seeds.tarArchives,
    async (bytes) => {
      for await (const file of tarFiles(streamOf(bytes), 1 << 20)) readImageHeader(file.bytes);
    },
    // A file in the archive that is not an image is refused by the same check as uploads.
    (error) => isHttpProblem(error) || error instanceof FormatError,
  ),
  textTarget(
    "edge.parseRange",
    ["bytes=0-99", "bytes=100-", "bytes=-64", "bytes=5-4", "bytes=0-0,5-9", "bytes=1000-"],
    (text) => parseRange(text, 1000),
  ),
  textTarget("edge.decodeCursor", ["eyJiZWZvcmUiOiJqb2JfMDFtOGQwZnh2Y3BmIn0"], decodeCursor),
];
