/**
 * Decoding token ids without a GPU: back to ids in another form, or to quantized latents, the
 * codebook vectors in the normalised space the rectifier takes, laid out C×H×W per image (the
 * token layout is the latent in C-H-W order, D values per token, so the (T, D) vectors are the
 * (C, H, W) latent). Turning latents into pixels is the GPU's reconstruct job.
 */
import {
  type DecodedTokens,
  FormatError,
  type TokenizerManifest,
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
import { findTokenizer, manifestOf, type TokenizerRow } from "./tokenizers.ts";

export const DECODE_OUTPUTS = ["latents", "ids"] as const;
export const DECODE_FORMATS = ["npy", "safetensors", "json"] as const;
export type DecodeOutput = (typeof DECODE_OUTPUTS)[number];
export type DecodeFormat = (typeof DECODE_FORMATS)[number];

export type Decoded = { body: Uint8Array | string; contentType: string; stats?: GatherStats };

async function tokenizerFor(
  db: Db,
  tenantId: string,
  tokens: DecodedTokens,
  named: string | undefined,
) {
  const hash = tokens.header.tokenizerHash;
  let row: TokenizerRow;
  try {
    row = await findTokenizer(db, tenantId, named ?? hash);
  } catch (error) {
    if (error instanceof HttpProblem && error.status === 404) {
      throw new HttpProblem(
        422,
        "tokenizer-not-found",
        `No tokenizer ${named ?? hash} is available to this tenant.`,
      );
    }
    throw error;
  }
  if (row.manifestHash !== hash) {
    throw new FormatError(
      "token-stream",
      "bad-tokenizer-hash",
      `the tokens were made by tokenizer ${hash}, not by ${row.id} (${row.manifestHash})`,
    );
  }
  if (row.status !== "ready") {
    throw new HttpProblem(
      409,
      "tokenizer-not-ready",
      `Tokenizer ${row.id} is still waiting for its files.`,
    );
  }
  return row;
}

function checkShape(tokens: DecodedTokens, manifest: TokenizerManifest): void {
  const { tokensPerRecord, codesPerGroup, groups } = tokens.header;
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
  tokens: DecodedTokens,
  request: { tokenizer?: string; output: DecodeOutput; format: DecodeFormat },
): Promise<Decoded> {
  const { recordCount } = tokens.header;
  if (recordCount > config.maxDecodeRecords) {
    throw new HttpProblem(
      413,
      "too-many-records",
      `The tokens hold ${recordCount} records; decode takes at most ${config.maxDecodeRecords} per request.`,
    );
  }
  const tokenizer = await tokenizerFor(db, tenantId, tokens, request.tokenizer);
  const manifest = manifestOf(tokenizer);
  checkShape(tokens, manifest);

  if (request.output === "ids") {
    if (request.format === "json") {
      return {
        body: JSON.stringify(writeTokenJson(tokens.header, tokens.tokens)),
        contentType: "application/json",
      };
    }
    if (request.format === "npy") {
      return {
        body: writeTokenNpy(tokens.header, tokens.tokens),
        contentType: "application/octet-stream",
      };
    }
    throw new HttpProblem(400, "invalid-request", "Token ids come as format=json or format=npy.");
  }

  const source = await codebookSource(env.BUCKET, tokenizer.manifestHash, manifest);
  const { codes, stats } = await gatherCodes(source, tokens.tokens, tokens.header.tokensPerRecord, {
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
