import { z } from "@hono/zod-openapi";
import {
  manifestFiles,
  manifestOf,
  PUBLIC_OWNER,
  type TokenizerRow,
} from "../services/tokenizers.ts";
import { isoTime, Timestamp } from "./common.ts";

export const TokenizerFile = z.object({ path: z.string(), bytes: z.int(), sha256: z.string() });

export const Tokenizer = z
  .object({
    id: z.string().openapi({ example: "tok_01m8d0fxvcpfrrd0dgccvp9czy" }),
    name: z.string(),
    manifestHash: z
      .string()
      .openapi({ description: "SHA-256 of the canonical manifest: the identity." }),
    owner: z.enum(["public", "tenant"]),
    status: z
      .enum(["pending", "ready"])
      .openapi({ description: "`ready` once every file is stored." }),
    quantizer: z.object({
      tokens: z.int(),
      groups: z.int(),
      codeDim: z.int(),
      codesPerGroup: z.int(),
    }),
    files: z.array(TokenizerFile),
    createdAt: Timestamp,
    readyAt: Timestamp.nullable(),
  })
  .openapi("Tokenizer");

export const TokenizerWithManifest = Tokenizer.extend({
  manifest: z
    .record(z.string(), z.unknown())
    .openapi({ description: "The manifest (schema revq.tokenizer/v1)." }),
}).openapi("TokenizerWithManifest");

export function tokenizerView(row: TokenizerRow) {
  const manifest = manifestOf(row);
  return {
    id: row.id,
    name: row.name,
    manifestHash: row.manifestHash,
    owner: row.owner === PUBLIC_OWNER ? ("public" as const) : ("tenant" as const),
    status: row.status,
    quantizer: manifest.quantizer,
    files: manifestFiles(manifest).map(({ path, bytes, sha256 }) => ({ path, bytes, sha256 })),
    createdAt: isoTime(row.createdAt),
    readyAt: row.readyAt === null ? null : isoTime(row.readyAt),
  };
}
