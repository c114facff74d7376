/**
 * Token stream → images, on this machine: @revq/shared reads the stream (every CRC, every id)
 * and looks the codes up; the worker's device code (@revq/gpu-worker/device-ops: rectifier,
 * de-normalisation, VAE decoder) runs on the browser's TensorFlow.js backend. Pixels are rounded
 * to 8 bits as the worker rounds them for its PNGs (gpu-worker/src/images/codec.ts, encodePng).
 *
 * This module is the console's decoder bundle: pages load it with import() when they need it.
 */

import { decodeQuantized } from "@revq/gpu-worker/device-ops";
import { lookupCodes, readTokenStream } from "@revq/shared";
import type { Api } from "./api.ts";
import { startBackend } from "./decoder-backend.ts";
import { loadTokenizer } from "./decoder-tokenizer.ts";

export type Decoded = {
  /** One per record decoded, at the tokenizer's resolution. */
  images: ImageData[];
  /** Records in the stream; only the first `images.length` were decoded. */
  recordCount: number;
  backend: string;
  /** Loading the tokenizer (the first time) and decoding. */
  seconds: number;
};

/** Decodes the first `limit` records of a token stream, with the tokenizer its header names. */
export async function decodeTokens(api: Api, stream: Uint8Array, limit: number): Promise<Decoded> {
  const started = performance.now();
  const { header, tokens } = readTokenStream(stream);
  const tokenizer = await loadTokenizer(api, header.tokenizerHash);
  const { quantizer, vae } = tokenizer.manifest;
  if (
    header.tokensPerRecord !== quantizer.tokens ||
    header.groups !== quantizer.groups ||
    header.codesPerGroup !== quantizer.codesPerGroup
  ) {
    throw new Error(
      `The tokens have T=${header.tokensPerRecord}, G=${header.groups}, K=${header.codesPerGroup}; their tokenizer has T=${quantizer.tokens}, G=${quantizer.groups}, K=${quantizer.codesPerGroup}.`,
    );
  }
  const count = Math.min(limit, header.recordCount);
  const perRecord = header.tokensPerRecord;
  const quantized = lookupCodes(
    tokenizer.codebook,
    tokens.subarray(0, count * perRecord),
    perRecord,
  );
  const pixels = await decodeQuantized(tokenizer, quantized, count);
  const { height, width } = vae.inputResolution;
  const each = height * width * 3;
  const images = Array.from({ length: count }, (_, i) =>
    toImageData(pixels.subarray(i * each, (i + 1) * each), width, height),
  );
  return {
    images,
    recordCount: header.recordCount,
    backend: (await startBackend()).detail,
    seconds: (performance.now() - started) / 1000,
  };
}

/** H·W·3 values in [-1, 1] → RGBA, clamped and rounded as the worker's PNGs are. */
function toImageData(image: Float32Array, width: number, height: number): ImageData {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      rgba[p * 4 + c] = Math.round(Math.min(1, Math.max(-1, image[p * 3 + c])) * 127.5 + 127.5);
    }
    rgba[p * 4 + 3] = 255;
  }
  return new ImageData(rgba, width, height);
}
