/**
 * Tokens a client uploads (a generative model's output, say) to reconstruct as images: read in
 * any of the three forms the product writes — the token stream, the JSON token document, an
 * integer `.npy` of (N, T) — checked against their tokenizer as /v1/decode checks them, and kept
 * as one token stream under the tenant's prefix, where a reconstruct job's worker reads it.
 */
import {
  bucketKeys,
  type DecodedTokens,
  MAX_UPLOADED_TOKEN_RECORDS,
  readTokenJson,
  readTokenNpy,
  TOKEN_STREAM_MEDIA_TYPE,
  type UploadedTokens,
  writeTokenStream,
} from "@revq/shared";
import type { Db } from "../db/client.ts";
import { HttpProblem } from "../problem.ts";
import { checkShape, type TokenSource, tokenizerFor } from "./decode.ts";
import { newId } from "./ids.ts";
import { manifestOf, readyTokenizer, type TokenizerRow } from "./tokenizers.ts";

/** A body as it arrived, by form: the stream as read, the JSON parsed, the .npy whole. */
export type TokenUpload =
  | { form: "stream"; source: TokenSource }
  | { form: "json"; document: unknown }
  | { form: "npy"; bytes: Uint8Array };

/** What the object's metadata says, so that a reconstruct job reads no token to use it. */
type TokensMetadata = {
  tokenizerId: string;
  tokenizerHash: string;
  recordCount: string;
  tokensPerRecord: string;
};

function checkRecords(recordCount: number): void {
  if (recordCount > MAX_UPLOADED_TOKEN_RECORDS) {
    throw new HttpProblem(
      413,
      "too-many-records",
      `The tokens hold ${recordCount} records; an upload holds at most ${MAX_UPLOADED_TOKEN_RECORDS}.`,
    );
  }
}

/** The ids and their tokenizer, checked; a stream's records are read only once its header fits. */
async function readUpload(
  db: Db,
  tenantId: string,
  upload: TokenUpload,
  named: string | undefined,
): Promise<{ tokenizer: TokenizerRow; tokens: DecodedTokens }> {
  if (upload.form === "npy") {
    if (!named) {
      throw new HttpProblem(
        400,
        "invalid-request",
        "A .npy of token ids names no tokenizer: give it as ?tokenizer=.",
      );
    }
    const tokenizer = await readyTokenizer(db, tenantId, named);
    const q = manifestOf(tokenizer).quantizer;
    const tokens = readTokenNpy(upload.bytes, {
      tokenizerHash: tokenizer.manifestHash,
      tokensPerRecord: q.tokens,
      codesPerGroup: q.codesPerGroup,
      groups: q.groups,
    });
    checkRecords(tokens.header.recordCount);
    return { tokenizer, tokens };
  }
  const source: TokenSource =
    upload.form === "stream"
      ? upload.source
      : (() => {
          const tokens = readTokenJson(upload.document);
          return { header: tokens.header, ids: async () => tokens.tokens };
        })();
  checkRecords(source.header.recordCount);
  const tokenizer = await tokenizerFor(db, tenantId, source.header, named);
  checkShape(source.header, manifestOf(tokenizer));
  return { tokenizer, tokens: { header: source.header, tokens: await source.ids() } };
}

function uploadedView(id: string, metadata: TokensMetadata, bytes: number, uploaded: Date) {
  return {
    id,
    tokenizer: { id: metadata.tokenizerId, manifestHash: metadata.tokenizerHash },
    recordCount: Number(metadata.recordCount),
    tokensPerRecord: Number(metadata.tokensPerRecord),
    bytes,
    createdAt: uploaded.toISOString(),
  } satisfies UploadedTokens;
}

/** Checks the upload and keeps it as a token stream; nothing is stored unless all of it is good. */
export async function uploadTokens(
  bucket: R2Bucket,
  db: Db,
  tenantId: string,
  upload: TokenUpload,
  named: string | undefined,
): Promise<UploadedTokens> {
  const { tokenizer, tokens } = await readUpload(db, tenantId, upload, named);
  const { header } = tokens;
  if (header.recordCount === 0) {
    throw new HttpProblem(422, "no-tokens", "The upload holds no records.");
  }
  const id = newId("tks");
  const stream = writeTokenStream(header, tokens.tokens);
  const metadata: TokensMetadata = {
    tokenizerId: tokenizer.id,
    tokenizerHash: tokenizer.manifestHash,
    recordCount: String(header.recordCount),
    tokensPerRecord: String(header.tokensPerRecord),
  };
  const object = await bucket.put(bucketKeys.uploadedTokens(tenantId, id), stream, {
    httpMetadata: { contentType: TOKEN_STREAM_MEDIA_TYPE },
    customMetadata: metadata,
  });
  return uploadedView(id, metadata, stream.length, object.uploaded);
}

/** An upload of this tenant's, from its object's metadata (404 tokens-not-found). */
export async function findUploadedTokens(
  bucket: R2Bucket,
  tenantId: string,
  id: string,
): Promise<UploadedTokens> {
  const object = /^tks_[0-9a-z]{26}$/.test(id)
    ? await bucket.head(bucketKeys.uploadedTokens(tenantId, id))
    : null;
  if (!object) throw new HttpProblem(404, "tokens-not-found", `No uploaded tokens ${id}.`);
  return uploadedView(id, object.customMetadata as TokensMetadata, object.size, object.uploaded);
}
