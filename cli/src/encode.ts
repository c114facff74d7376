/**
 * Images to tokens on the edge: upload, one encode job, wait for it, download its tokens in the
 * asked form and check them with the shared format code (the edge's own) before anyone uses
 * them: the right tokenizer, one record per image, CRCs intact.
 */
import { randomUUID } from "node:crypto";
import {
  Job,
  MAX_JOB_IMAGES,
  readNpy,
  readTokenJson,
  readTokenStream,
  type Tokenizer,
} from "@revq/shared";
import type { Api } from "./api.ts";
import { CliError, EXIT, usageError } from "./errors.ts";
import { type LocalImage, type UploadedImage, uploadImages } from "./images.ts";
import { requireSucceeded, waitForJob } from "./jobs.ts";
import type { Output } from "./output.ts";

export const TOKEN_FORMATS = ["rvq", "json", "npy"] as const;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];
/** File extensions: .rvqt is the token stream's, as in the bucket (docs/token-stream.md). */
export const TOKEN_EXTENSIONS: Record<TokenFormat, string> = {
  rvq: "rvqt",
  json: "json",
  npy: "npy",
};
/** The edge's name for each form (GET /v1/jobs/{id}/tokens?format=). */
const EDGE_FORMAT: Record<TokenFormat, string> = { rvq: "binary", json: "json", npy: "npy" };

export type Encoded = { job: Job; images: UploadedImage[] };

export async function encodeImages(
  api: Api,
  out: Output,
  images: LocalImage[],
  tokenizer: Tokenizer,
): Promise<Encoded> {
  if (images.length > MAX_JOB_IMAGES) {
    throw usageError(
      `${images.length} images: one job takes at most ${MAX_JOB_IMAGES}`,
      "split them into several runs",
    );
  }
  const upload = out.progress("upload  ");
  const uploaded = await uploadImages(api, images, upload);
  upload.end();
  const created = await api.json("POST", "/v1/jobs", Job, {
    body: {
      kind: "encode",
      tokenizer: tokenizer.id,
      inputs: { images: uploaded.map((i) => i.id) },
    },
    idempotencyKey: randomUUID(),
  });
  const count = `${uploaded.length} image${uploaded.length === 1 ? "" : "s"}`;
  out.note(`encode job ${created.id} queued (${count}, ${tokenizer.name})`);
  const encoding = out.progress("encode  ");
  const job = await waitForJob(api, created.id, encoding);
  encoding.end();
  requireSucceeded(job);
  return { job, images: uploaded };
}

export async function downloadTokens(
  api: Api,
  jobId: string,
  format: TokenFormat,
  expect: { records: number; tokenizerHash: string },
): Promise<Uint8Array> {
  const bytes = await api.bytes("GET", `/v1/jobs/${encodeURIComponent(jobId)}/tokens`, {
    query: { format: EDGE_FORMAT[format] },
  });
  checkTokens(bytes, format, expect);
  return bytes;
}

function checkTokens(
  bytes: Uint8Array,
  format: TokenFormat,
  expect: { records: number; tokenizerHash: string },
): void {
  try {
    if (format === "npy") {
      const { shape } = readNpy(bytes);
      if (shape[0] !== expect.records) throw new Error(`${shape[0]} rows, not ${expect.records}`);
      return;
    }
    const { header } =
      format === "rvq"
        ? readTokenStream(bytes)
        : readTokenJson(JSON.parse(new TextDecoder().decode(bytes)));
    if (header.recordCount !== expect.records) {
      throw new Error(`${header.recordCount} records, not ${expect.records}`);
    }
    if (header.tokenizerHash !== expect.tokenizerHash) {
      throw new Error(`made by tokenizer ${header.tokenizerHash}, not ${expect.tokenizerHash}`);
    }
  } catch (error) {
    throw new CliError(
      `the tokens downloaded are not what the job made: ${(error as Error).message}`,
      EXIT.unavailable,
    );
  }
}
