/**
 * Decoding token ids without a GPU: back to ids in another form, or to quantized latents, the
 * codebook vectors in the normalised space the rectifier takes, laid out C×H×W per image (the
 * token layout is the latent in C-H-W order, D values per token, so the (T, D) vectors are the
 * (C, H, W) latent). Turning latents into pixels is the GPU's reconstruct job.
 */
import {
  type DecodedTokens,
  FormatError,
  TOKEN_STREAM_HEADER_BYTES,
  type TokenizerManifest,
  TokenStreamDecoder,
  type TokenStreamHeader,
  writeNpy,
  writeSafetensors,
  writeTokenJson,
  writeTokenNpy,
} from "@revq/shared";
import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { codebookSource, type GatherStats, gatherCodes } from "./codebook-reader.ts";
import { manifestOf, readyTokenizer, type TokenizerRow } from "./tokenizers.ts";

export const DECODE_OUTPUTS = ["latents", "ids"] as const;
export const DECODE_FORMATS = ["npy", "safetensors", "json"] as const;
export type DecodeOutput = (typeof DECODE_OUTPUTS)[number];
export type DecodeFormat = (typeof DECODE_FORMATS)[number];

export type Decoded = { body: Uint8Array | string; contentType: string; stats?: GatherStats };

/**
 * Tokens to decode: the header, which decodeTokens checks first, and the ids, which it asks for
 * only once the header fits the request's limits and the tokenizer.
 */
export type TokenSource = { header: TokenStreamHeader; ids: () => Promise<Uint32Array> };

/** Tokens already read whole (the JSON token document). */
export function decodedSource(tokens: DecodedTokens): TokenSource {
  return { header: tokens.header, ids: async () => tokens.tokens };
}

/**
 * A token stream read as it arrives (a request body, an R2 object): its 64-byte header first;
 * its records, one at a time into the N·T ids, only when `ids` is called. Unpacking before the
 * checks multiplied memory by up to 32 (a 1-bit id becomes a u32): 8 MiB of them, 268 MB.
 */
export async function streamSource(stream: ReadableStream<Uint8Array>): Promise<TokenSource> {
  const reader = stream.getReader();
  const decoder = new TokenStreamDecoder();
  let headerFill = 0;
  let rest: Uint8Array = new Uint8Array(0);
  while (decoder.header === undefined) {
    const { done, value } = await reader.read();
    if (done) break;
    // Only the header's bytes: the decoder would unpack the records of the same chunk too.
    const take = Math.min(TOKEN_STREAM_HEADER_BYTES - headerFill, value.length);
    decoder.push(value.subarray(0, take));
    headerFill += take;
    rest = value.subarray(take);
  }
  // finish() throws here unless the header arrived whole: the stream ended inside it.
  const header = decoder.header ?? decoder.finish();
  return {
    header,
    ids: async () => {
      const { tokensPerRecord, recordCount } = header;
      const ids = new Uint32Array(recordCount * tokensPerRecord);
      let filled = 0;
      let chunk: Uint8Array | undefined = rest;
      while (chunk) {
        for (const record of decoder.push(chunk)) {
          ids.set(record, filled);
          filled += tokensPerRecord;
        }
        chunk = (await reader.read()).value;
      }
      decoder.finish();
      return ids;
    },
  };
}

/** The tokenizer the tokens name, which must be the one the request names if it names one. */
export async function tokenizerFor(
  db: Db,
  tenantId: string,
  header: TokenStreamHeader,
  named: string | undefined,
): Promise<TokenizerRow> {
  const hash = header.tokenizerHash;
  // Tokens made before their tokenizer was deleted still decode.
  const row = await readyTokenizer(db, tenantId, named ?? hash, { deleted: true });
  if (row.manifestHash !== hash) {
    throw new FormatError(
      "token-stream",
      "bad-tokenizer-hash",
      `the tokens were made by tokenizer ${hash}, not by ${row.id} (${row.manifestHash})`,
    );
  }
  return row;
}

/** Tokens fit their tokenizer: its T, K and G. */
export function checkShape(header: TokenStreamHeader, manifest: TokenizerManifest): void {
  const { tokensPerRecord, codesPerGroup, groups } = header;
  const q = manifest.quantizer;
  if (tokensPerRecord !== q.tokens || codesPerGroup !== q.codesPerGroup || groups !== q.groups) {
    throw new FormatError(
      "token-stream",
      "tokenizer-mismatch",
      `the stream says T=${tokensPerRecord}, K=${codesPerGroup}, G=${groups}; the tokenizer has T=${q.tokens}, K=${q.codesPerGroup}, G=${q.groups}`,
    );
  }
}

export async function decodeTokens(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  source: TokenSource,
  request: { tokenizer?: string; output: DecodeOutput; format: DecodeFormat },
): Promise<Decoded> {
  const { header } = source;
  const { recordCount } = header;
  if (recordCount > config.maxDecodeRecords) {
    throw new HttpProblem(
      413,
      "too-many-records",
      `The tokens hold ${recordCount} records; decode takes at most ${config.maxDecodeRecords} per request.`,
    );
  }
  const tokenizer = await tokenizerFor(db, tenantId, header, request.tokenizer);
  const manifest = manifestOf(tokenizer);
  checkShape(header, manifest);
  // Bounded now: at most maxDecodeRecords records of the tokenizer's T, no more bytes than the
  // answer they make.
  const ids = await source.ids();

  if (request.output === "ids") {
    if (request.format === "json") {
      return {
        body: JSON.stringify(writeTokenJson(header, ids)),
        contentType: "application/json",
      };
    }
    if (request.format === "npy") {
      return {
        body: writeTokenNpy(header, ids),
        contentType: "application/octet-stream",
      };
    }
    throw new HttpProblem(400, "invalid-request", "Token ids come as format=json or format=npy.");
  }

  const codebook = await codebookSource(env.BUCKET, tokenizer.manifestHash, manifest);
  const { codes, stats } = await gatherCodes(codebook, ids, header.tokensPerRecord, {
    mergeGap: config.decodeMergeGapBytes,
    maxRanges: config.decodeMaxRangeReads,
  });
  const { channels, height, width } = manifest.vae.latentShape;
  const shape = [recordCount, channels, height, width];
  if (request.format === "npy")
    return { body: writeNpy(codes, shape), contentType: "application/octet-stream", stats };
  if (request.format === "safetensors") {
    const body = writeSafetensors(
      { latents: { dtype: "F32", shape, data: codes } },
      { tokenizer: tokenizer.manifestHash, space: "normalized", layout: "NCHW" },
    );
    return { body, contentType: "application/octet-stream", stats };
  }
  throw new HttpProblem(
    400,
    "invalid-request",
    "Latents come as format=npy or format=safetensors.",
  );
}
