/**
 * A small but real tokenizer for tests, built the way the method builds one: the tiny DC-AE of
 * fixtures D (a real diffusers AutoencoderDC, 8 latent channels, f4) at 32×32 → latents 8×8×8,
 * statistics and a codebook initialised from the latents of synthetic training images (the
 * shared math: batchStats, normalize, initCodebookFromLatents), 128 tokens of 4 values, one
 * group per token, 64 codes. The rectifier is the identity, or the paper's architecture at a
 * tiny size with seeded random weights.
 *
 * Also: deterministic synthetic images, encoded as PNG, JPEG or WebP by sharp.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  batchStats,
  canonicalJson,
  type FileRef,
  initCodebookFromLatents,
  manifestHash,
  normalize,
  parseManifest,
  quantLayout,
  Rng,
  sampleCodebookSources,
  sha256Hex,
  standardDeviation,
  type Tensor,
  type TokenizerManifest,
  writeSafetensors,
} from "@revq/shared";
import sharp from "sharp";
import { decodeImage } from "../../../gpu-worker/src/images/codec.ts";
import { loadVae } from "../../../gpu-worker/src/models/load-vae.ts";
import { loadRectifier } from "../../../gpu-worker/src/models/rectifier.ts";
import { randomInitSource, safetensorsSource } from "../../../gpu-worker/src/models/sources.ts";
import type { VaeSpec } from "../../../gpu-worker/src/models/vae.ts";
import type { TensorSource } from "../../../gpu-worker/src/models/weights.ts";
import { FIXTURES_DIR } from "../../helpers/fixtures.ts";

export const RESOLUTION = { height: 32, width: 32 };
const LATENT = { channels: 8, height: 8, width: 8 };
const TOKENS = 128;
const CODES = 64;
const TRAINING_IMAGES = 96;

export type BuiltTokenizer = {
  manifest: TokenizerManifest;
  /** The canonical manifest bytes, as the edge stores them. */
  manifestBytes: Uint8Array;
  hash: string;
  /** File bytes by manifest path. */
  files: Map<string, Uint8Array>;
};

/** A synthetic image: smooth colour gradients and a disc, different for every seed. */
export function syntheticPixels(seed: number, width: number, height: number): Uint8Array {
  const rng = new Rng(seed);
  const [a, b, c, d, e, f] = Array.from({ length: 6 }, () => rng.nextFloat());
  const cx = rng.nextFloat() * width;
  const cy = rng.nextFloat() * height;
  const r = (0.2 + 0.3 * rng.nextFloat()) * Math.min(width, height);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const v = y / height;
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      const i = (y * width + x) * 3;
      out[i] = 255 * (inside ? d : a * u + (1 - a) * v);
      out[i + 1] = 255 * (inside ? e : 0.5 + 0.5 * Math.sin(6 * b * u + 3 * v));
      out[i + 2] = 255 * (inside ? f : c * (1 - u) * v);
    }
  }
  return out;
}

export type ImageFormat = "png" | "jpeg" | "webp";

export async function syntheticImage(
  seed: number,
  format: ImageFormat = "png",
  width = 48,
  height = 40,
): Promise<Uint8Array> {
  const image = sharp(syntheticPixels(seed, width, height), {
    raw: { width, height, channels: 3 },
  });
  const encoded = await (format === "png"
    ? image.png()
    : format === "jpeg"
      ? image.jpeg({ quality: 95 })
      : image.webp({ lossless: true })
  ).toBuffer();
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.length);
}

export async function fileRef(
  path: string,
  bytes: Uint8Array,
  tensors?: string[],
): Promise<FileRef> {
  return {
    path,
    bytes: bytes.length,
    sha256: await sha256Hex(bytes),
    ...(tensors ? { tensors } : {}),
  };
}

/** A TensorSource that keeps what it hands out, to write the same weights to a file. */
export function recording(source: TensorSource, into: Record<string, Tensor>): TensorSource {
  return {
    async read(name, shape) {
      const data = await source.read(name, shape);
      into[name] = { dtype: "F32", shape: [...shape], data };
      return data;
    },
    names: () => source.names(),
  };
}

/** Builds the tokenizer on the current tfjs backend. */
export async function buildTinyTokenizer(
  options: { rectifier?: "identity" | "random" } = {},
): Promise<BuiltTokenizer> {
  const config = JSON.parse(readFileSync(join(FIXTURES_DIR, "dcae_config.json"), "utf8"));
  const vaeBytes = new Uint8Array(readFileSync(join(FIXTURES_DIR, "dcae_weights.safetensors")));
  const files = new Map<string, Uint8Array>([["vae.safetensors", vaeBytes]]);
  const vaeSpec: VaeSpec = {
    name: "dcae-tiny-fixture",
    kind: "dcae",
    inputResolution: RESOLUTION,
    latentShape: LATENT,
    config,
    weights: await fileRef("vae.safetensors", vaeBytes),
  };
  const vae = await loadVae(vaeSpec, safetensorsSource(vaeBytes));
  const dims = LATENT.channels * LATENT.height * LATENT.width;
  const images = new Float32Array(TRAINING_IMAGES * RESOLUTION.height * RESOLUTION.width * 3);
  for (let i = 0; i < TRAINING_IMAGES; i++) {
    const png = await syntheticImage(10_000 + i);
    images.set(await decodeImage(png, RESOLUTION), i * RESOLUTION.height * RESOLUTION.width * 3);
  }
  const latents = await vae.encode(images, TRAINING_IMAGES);
  vae.dispose();

  const stats = batchStats(latents, dims);
  const mean = Float32Array.from(stats.mean);
  const std = Float32Array.from(standardDeviation(stats));
  const layout = quantLayout(LATENT, TOKENS);
  const bank = normalize(latents, mean, std);
  const sources = sampleCodebookSources(new Rng(7), layout, CODES, TRAINING_IMAGES);
  const codebook = initCodebookFromLatents(bank, layout, sources, CODES);
  const statsBytes = writeSafetensors({
    mean: { dtype: "F32", shape: [dims], data: mean },
    std: { dtype: "F32", shape: [dims], data: std },
  });
  const codebookBytes = writeSafetensors({
    codebook: { dtype: "F32", shape: [layout.groups, CODES, layout.codeDim], data: codebook.data },
  });
  files.set("stats.safetensors", statsBytes);
  files.set("codebook.safetensors", codebookBytes);

  const random = options.rectifier === "random";
  const rectifierSpec = { channels: 32, blocks: 1, attentionHeadDim: 8, qkvMultiscales: [5] };
  let rectifierFile: FileRef | undefined;
  if (random) {
    const tensors: Record<string, Tensor> = {};
    const rectifier = await loadRectifier(
      {
        latentChannels: LATENT.channels,
        channels: rectifierSpec.channels,
        blocks: rectifierSpec.blocks,
        headDim: rectifierSpec.attentionHeadDim,
        multiscales: rectifierSpec.qkvMultiscales,
      },
      recording(randomInitSource(11), tensors),
    );
    for (const b of rectifier.bindings) b.param.dispose();
    const bytes = writeSafetensors(tensors);
    files.set("rectifier.safetensors", bytes);
    rectifierFile = await fileRef("rectifier.safetensors", bytes);
  }

  const manifest = parseManifest({
    schema: "revq.tokenizer/v1",
    name: `tiny-test-${random ? "rectified" : "identity"}`,
    description: "Test tokenizer: the fixture DC-AE, codebook initialised from synthetic images.",
    vae: vaeSpec,
    quantizer: { tokens: TOKENS, groups: TOKENS, codeDim: layout.codeDim, codesPerGroup: CODES },
    rectifier: random
      ? { architecture: "dcae-decoder-stage", ...rectifierSpec, norm: "rms_norm", act: "silu" }
      : { architecture: "identity" },
    files: {
      stats: await fileRef("stats.safetensors", statsBytes, ["mean", "std"]),
      codebook: await fileRef("codebook.safetensors", codebookBytes, ["codebook"]),
      ...(rectifierFile ? { rectifier: rectifierFile } : {}),
    },
  });
  const hash = await manifestHash(manifest);
  return {
    manifest,
    manifestBytes: new TextEncoder().encode(canonicalJson(manifest)),
    hash,
    files,
  };
}
