/**
 * Reads the codebook rows a decode needs straight from the tokenizer's safetensors file in R2,
 * never the whole codebook: the paper's 512 × 16384 × 4 F32 codebook is 134 MB, more than a
 * Worker's 128 MB. The header is read with two small range reads (and remembered per isolate:
 * the file is content-addressed); the rows are fetched with coalesced range reads
 * (objects/range-plan.ts) and picked out of each response as it streams, so memory stays proportional
 * to the rows needed, not to the bytes read. Responses are read into one reused buffer per
 * parallel read (BYOB): a dense decode streams the whole 134 MB file, and when the stream
 * allocated every chunk, the chunks waited for the garbage collector and the isolate reached
 * 141 MiB, over the 128 MB limit; now it peaks near 60 MiB (bench/results/edge-decode.json).
 */
import {
  bucketKeys,
  type FileRef,
  headerLengthFromPrefix,
  parseSafetensorsHeader,
  SAFETENSORS_PREFIX_BYTES,
  type TensorInfo,
  type TokenizerManifest,
} from "@revq/shared";
import { HttpProblem } from "../problem.ts";
import { planRangeReads, type RangePlanOptions } from "./objects/range-plan.ts";

/** The Workers runtime allows six open connections at once; more reads would just queue. */
const PARALLEL_READS = 6;
const F32_BYTES = 4;
/** What one parallel read streams into at a time. */
const READ_BUFFER_BYTES = 256 * 1024;

export type CodebookSource = {
  bucket: R2Bucket;
  key: string;
  tensor: TensorInfo;
  groups: number;
  codes: number;
  dim: number;
};

const headers = new Map<string, Promise<TensorInfo>>();

function invalid(detail: string): HttpProblem {
  return new HttpProblem(
    500,
    "tokenizer-codebook-invalid",
    `The tokenizer's codebook file is unusable: ${detail}`,
  );
}

async function readRange(
  bucket: R2Bucket,
  key: string,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const object = await bucket.get(key, { range: { offset, length } });
  if (!object) throw invalid(`${key} is missing`);
  return new Uint8Array(await object.arrayBuffer());
}

async function readCodebookTensor(
  bucket: R2Bucket,
  key: string,
  ref: FileRef,
): Promise<TensorInfo> {
  const prefix = await readRange(bucket, key, 0, SAFETENSORS_PREFIX_BYTES);
  const length = headerLengthFromPrefix(prefix);
  const header = parseSafetensorsHeader(
    await readRange(bucket, key, SAFETENSORS_PREFIX_BYTES, length),
    {
      fileSize: ref.bytes,
    },
  );
  const tensor =
    header.tensors.get("codebook") ??
    (header.tensors.size === 1 ? [...header.tensors.values()][0] : undefined);
  if (!tensor) throw invalid(`no tensor named "codebook" among ${header.tensors.size}`);
  return tensor;
}

/** Where the (G, K, D) F32 codebook of a tokenizer lies, checked against its manifest. */
export async function codebookSource(
  bucket: R2Bucket,
  hash: string,
  manifest: TokenizerManifest,
): Promise<CodebookSource> {
  const ref = manifest.files.codebook;
  const key = bucketKeys.tokenizerFile(hash, ref.path);
  let pending = headers.get(key);
  if (!pending) {
    pending = readCodebookTensor(bucket, key, ref);
    headers.set(key, pending);
    pending.catch(() => headers.delete(key));
  }
  const tensor = await pending;
  const { groups, codesPerGroup: codes, codeDim: dim } = manifest.quantizer;
  if (tensor.dtype !== "F32" || tensor.shape.join(",") !== `${groups},${codes},${dim}`) {
    throw invalid(
      `tensor ${tensor.name} is ${tensor.dtype} [${tensor.shape}], the manifest says F32 [${groups},${codes},${dim}]`,
    );
  }
  return { bucket, key, tensor, groups, codes, dim };
}

type Wanted = { offset: number; slot: number };

/**
 * Streams one range into `buffer` and copies the wanted rows (sorted by offset, all inside it)
 * into `into`. A BYOB read takes the buffer and hands the same memory back with the bytes, so
 * the buffer returned is the one to pass for the next range.
 */
async function copyRows(
  source: CodebookSource,
  offset: number,
  length: number,
  rows: Wanted[],
  into: Uint8Array,
  buffer: ArrayBuffer,
): Promise<ArrayBuffer> {
  const rowBytes = source.dim * F32_BYTES;
  const object = await source.bucket.get(source.key, { range: { offset, length } });
  if (!object) throw invalid(`${source.key} is missing`);
  const reader = object.body.getReader({ mode: "byob" });
  let position = offset;
  let next = 0;
  while (next < rows.length) {
    const { done, value } = await reader.read(new Uint8Array(buffer));
    if (done || !value) throw invalid(`a range read of ${source.key} ended early`);
    buffer = value.buffer;
    const end = position + value.length;
    for (let j = next; j < rows.length && rows[j].offset < end; j++) {
      const from = Math.max(rows[j].offset, position);
      const to = Math.min(rows[j].offset + rowBytes, end);
      if (from < to)
        into.set(
          value.subarray(from - position, to - position),
          rows[j].slot * rowBytes + from - rows[j].offset,
        );
    }
    while (next < rows.length && rows[next].offset + rowBytes <= end) next++;
    position = end;
  }
  await reader.cancel();
  return buffer;
}

export type GatherStats = { uniqueRows: number; rangeReads: number; bytesRead: number };

/**
 * The codebook vectors of `ids` (record after record, T per record; token t uses group t mod G):
 * (N·T·D) float32, exactly the stored values.
 */
export async function gatherCodes(
  source: CodebookSource,
  ids: Uint32Array,
  tokensPerRecord: number,
  plan: RangePlanOptions,
  bufferBytes = READ_BUFFER_BYTES,
): Promise<{ codes: Float32Array; stats: GatherStats }> {
  const { groups, codes, dim, tensor } = source;
  const rowBytes = dim * F32_BYTES;
  const rowOf = new Float64Array(ids.length);
  for (let i = 0; i < ids.length; i++) rowOf[i] = ((i % tokensPerRecord) % groups) * codes + ids[i];
  const unique = Float64Array.from(new Set(rowOf)).sort();
  const offsets = Array.from(unique, (row) => tensor.start + row * rowBytes);
  const ranges = planRangeReads(offsets, rowBytes, plan);

  const rowBytesOut = new Uint8Array(unique.length * rowBytes);
  let cursor = 0;
  const work = ranges.map((range) => {
    const rows: Wanted[] = [];
    while (cursor < offsets.length && offsets[cursor] < range.offset + range.length) {
      rows.push({ offset: offsets[cursor], slot: cursor });
      cursor++;
    }
    return { range, rows };
  });
  let taken = 0;
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL_READS, work.length) }, async () => {
      let buffer = new ArrayBuffer(bufferBytes);
      while (taken < work.length) {
        const { range, rows } = work[taken++];
        buffer = await copyRows(source, range.offset, range.length, rows, rowBytesOut, buffer);
      }
    }),
  );

  const rowVectors = new Float32Array(rowBytesOut.buffer);
  const out = new Float32Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) {
    const slot = binarySearch(unique, rowOf[i]);
    out.set(rowVectors.subarray(slot * dim, slot * dim + dim), i * dim);
  }
  const bytesRead = ranges.reduce((n, r) => n + r.length, 0);
  return { codes: out, stats: { uniqueRows: unique.length, rangeReads: ranges.length, bytesRead } };
}

function binarySearch(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
