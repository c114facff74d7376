/**
 * Valid inputs for the parser fuzz, made by the project's own writers (and sharp and modern-tar,
 * which make what clients send): the mutations start from these.
 */
import { packTar } from "modern-tar";
import sharp from "sharp";
import { type NpyData, writeNpy } from "../../../shared/src/format/npy.ts";
import { type Tensor, writeSafetensors } from "../../../shared/src/format/safetensors.ts";
import { writeTokenNpy } from "../../../shared/src/format/token-convert.ts";
import { writeTokenJson } from "../../../shared/src/format/token-json.ts";
import {
  type TokenStreamParams,
  writeTokenStream,
} from "../../../shared/src/format/token-stream.ts";
import { encodeDatasetListing } from "../../../shared/src/protocol/dataset.ts";
import {
  MANIFEST_SCHEMA_VERSION,
  type TokenizerManifest,
} from "../../../shared/src/protocol/manifest.ts";
import { Rng } from "../../../shared/src/quant/rng.ts";

const HASH = "0123456789abcdef".repeat(4);

/** Shapes that reach every bit width's code path: 1, 6, 10, 14 and 24 bits per id. */
export const STREAM_SHAPES: (TokenStreamParams & { records: number })[] = [
  { tokenizerHash: HASH, tokensPerRecord: 1, codesPerGroup: 2, groups: 1, records: 3 },
  { tokenizerHash: HASH, tokensPerRecord: 128, codesPerGroup: 64, groups: 128, records: 3 },
  { tokenizerHash: HASH, tokensPerRecord: 17, codesPerGroup: 1000, groups: 1, records: 5 },
  { tokenizerHash: HASH, tokensPerRecord: 64, codesPerGroup: 16384, groups: 64, records: 1 },
  { tokenizerHash: HASH, tokensPerRecord: 9, codesPerGroup: 2 ** 24, groups: 3, records: 2 },
  { tokenizerHash: HASH, tokensPerRecord: 16, codesPerGroup: 100, groups: 4, records: 0 },
];

export function idsFor(shape: { tokensPerRecord: number; codesPerGroup: number }, records: number) {
  const rng = new Rng(shape.tokensPerRecord * 31 + records);
  return Uint32Array.from({ length: records * shape.tokensPerRecord }, () =>
    rng.nextInt(shape.codesPerGroup),
  );
}

export function tokenStreams(): Uint8Array[] {
  return STREAM_SHAPES.map((shape) => writeTokenStream(shape, idsFor(shape, shape.records)));
}

export function tokenJsons(): unknown[] {
  return STREAM_SHAPES.filter((s) => s.tokensPerRecord * s.records <= 512).map((shape) =>
    writeTokenJson(shape, idsFor(shape, shape.records)),
  );
}

/** The one shape token .npy files are read against (the reader takes T and K from elsewhere). */
export const NPY_TOKENS: TokenStreamParams = {
  tokenizerHash: HASH,
  tokensPerRecord: 16,
  codesPerGroup: 100,
  groups: 4,
};

export function tokenNpys(): Uint8Array[] {
  const ids = idsFor(NPY_TOKENS, 3);
  return [
    writeTokenNpy(NPY_TOKENS, ids),
    writeNpy(BigInt64Array.from(ids, BigInt), [3, 16]), // numpy's default int64
    writeNpy(Uint8Array.from(ids), [3, 16]),
    writeNpy(Int16Array.from(ids), [3, 16]),
  ];
}

export function npys(): Uint8Array[] {
  const arrays: [NpyData, number[]][] = [
    [Float32Array.from([1.5, -2, 0, 3.25, 8, 9]), [2, 3]],
    [Float64Array.from([Math.PI]), []],
    [new Int32Array(0), [0, 4]],
    [Int8Array.from([-1, 2, -3, 4]), [4]],
    [BigUint64Array.from([1n, 2n ** 63n]), [2, 1]],
    [Uint16Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [2, 2, 2]],
  ];
  return arrays.map(([data, shape]) => writeNpy(data, shape));
}

export function safetensorsFiles(): Uint8Array[] {
  const f32 = (n: number) => Float32Array.from({ length: n }, (_, i) => i / 3 - 1);
  const files: [Record<string, Tensor>, Record<string, string>][] = [
    [
      {
        mean: { dtype: "F32", shape: [16], data: f32(16) },
        std: { dtype: "F32", shape: [16], data: f32(16).fill(1) },
      },
      {},
    ],
    [{ codebook: { dtype: "F16", shape: [2, 4, 4], data: f32(32) } }, { format: "pt" }],
    [
      {
        a: { dtype: "BF16", shape: [3], data: f32(3) },
        b: { dtype: "I64", shape: [2, 2], data: BigInt64Array.from([1n, -2n, 3n, 2n ** 40n]) },
        c: { dtype: "U8", shape: [5], data: Uint8Array.from([0, 1, 2, 3, 255]) },
        d: { dtype: "I32", shape: [0], data: new Int32Array(0) },
      },
      {},
    ],
    [{}, {}],
  ];
  return files.map(([tensors, metadata]) => writeSafetensors(tensors, metadata));
}

const hex = (c: string) => c.repeat(64);

/** Two manifests: the paper's shape with a rectifier, and a small one with the identity. */
export function manifests(): TokenizerManifest[] {
  return [
    {
      schema: MANIFEST_SCHEMA_VERSION,
      name: "fuzz-paper",
      description: "DC-AE f32c32, 512 tokens of 4",
      vae: {
        name: "dc-ae-f32c32",
        kind: "dcae",
        inputResolution: { height: 256, width: 256 },
        latentShape: { channels: 32, height: 8, width: 8 },
        config: { latent_channels: 32, scaling_factor: 0.41407, qkv_multiscales: [[], [], [5]] },
      },
      quantizer: { tokens: 512, groups: 512, codeDim: 4, codesPerGroup: 16384 },
      rectifier: {
        architecture: "dcae-decoder-stage",
        channels: 512,
        blocks: 2,
        attentionHeadDim: 32,
        qkvMultiscales: [5],
        norm: "rms_norm",
        act: "silu",
      },
      files: {
        stats: { path: "stats.safetensors", bytes: 16528, sha256: hex("a"), tensors: ["mean"] },
        codebook: { path: "codebook.safetensors", bytes: 33554520, sha256: hex("b") },
        rectifier: { path: "weights/rectifier.safetensors", bytes: 9000000, sha256: hex("c") },
      },
      training: {
        dataset: { name: "photos", images: 1200 },
        epochs: 10,
        batchSize: 256,
        seed: 42,
        learningRates: { quantizer: 0.01, rectifier: 0.0005 },
        createdAt: "2026-11-26T12:00:00Z",
        software: { name: "revq", version: "0.1.0" },
        metrics: { usage: 0.99 },
      },
    },
    {
      schema: MANIFEST_SCHEMA_VERSION,
      name: "fuzz-small",
      vae: {
        name: "small",
        kind: "dcae",
        inputResolution: { height: 32, width: 32 },
        latentShape: { channels: 8, height: 8, width: 8 },
      },
      quantizer: { tokens: 128, groups: 128, codeDim: 4, codesPerGroup: 64 },
      rectifier: { architecture: "identity" },
      files: {
        stats: { path: "stats.safetensors", bytes: 4200, sha256: hex("d") },
        codebook: { path: "codebook.safetensors", bytes: 131200, sha256: hex("e") },
      },
    },
  ];
}

export async function datasetListings(): Promise<Uint8Array[]> {
  const entry = (i: number) => ({ key: `datasets/t/dst_${i}/img_${i}.png`, etag: hex(String(i)) });
  const one = await encodeDatasetListing([entry(1)]);
  const many = await encodeDatasetListing(Array.from({ length: 12 }, (_, i) => entry(i % 10)));
  return [one.bytes, many.bytes];
}

/** Small real images in every format the edge takes: sharp writes them as clients' tools do. */
export async function images(): Promise<Uint8Array[]> {
  const pixels = Uint8Array.from({ length: 12 * 10 * 3 }, (_, i) => (i * 37) % 256);
  const image = () => sharp(pixels, { raw: { width: 12, height: 10, channels: 3 } });
  const encoded = await Promise.all([
    image().png().toBuffer(),
    image().jpeg({ quality: 80 }).toBuffer(),
    image().jpeg({ progressive: true }).toBuffer(),
    image().webp({ lossless: true }).toBuffer(),
    image().webp({ quality: 70 }).toBuffer(),
    image().webp({ quality: 70, alphaQuality: 50 }).ensureAlpha().toBuffer(),
  ]);
  return encoded.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.length));
}

/** Archives as a dataset upload has them: images, a folder, a hidden file, a long name. */
export async function tarArchives(): Promise<Uint8Array[]> {
  const [png, jpeg] = await images();
  const file = (name: string, body: Uint8Array) => ({ header: { name, size: body.length }, body });
  return Promise.all([
    packTar([file("a.png", png)]),
    packTar([
      { header: { name: "photos/", size: 0, type: "directory" as const } },
      file("photos/b.jpg", jpeg),
      file("photos/._b.jpg", Uint8Array.from([0, 5, 22, 7])),
      file(`photos/${"long-name-".repeat(12)}.png`, png),
    ]),
  ]);
}
