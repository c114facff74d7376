/**
 * Tokens a client uploads (POST /v1/tokens): a model's output, say, to reconstruct as images. The
 * edge checks them against their tokenizer as /v1/decode does and keeps them as a token stream.
 */
import * as z from "zod";
import { Timestamp } from "./common.ts";
import { MAX_JOB_IMAGES } from "./jobs.ts";

/** Records one upload may hold: a reconstruct job makes one PNG per record, as many as an encode job's images. */
export const MAX_UPLOADED_TOKEN_RECORDS = MAX_JOB_IMAGES;

/** The media type of an int32 or int64 `.npy` of token ids, shape (N, T). */
export const NPY_MEDIA_TYPE = "application/x-npy";

export const UploadedTokens = z
  .object({
    id: z.string().meta({ example: "tks_01m8d0fxvcpfrrd0dgccvp9czy" }),
    tokenizer: z.object({ id: z.string(), manifestHash: z.string() }),
    recordCount: z.int().min(1),
    tokensPerRecord: z.int().min(1),
    bytes: z.int().meta({ description: "The size of the token stream kept." }),
    createdAt: Timestamp,
  })
  .meta({ id: "UploadedTokens" });
export type UploadedTokens = z.infer<typeof UploadedTokens>;
