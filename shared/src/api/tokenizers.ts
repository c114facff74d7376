/** The client API's tokenizer shapes (api/common.ts says how they are used). */
import * as z from "zod";
import { TokenizerEvaluation } from "../protocol/tokenizer-evaluation.ts";
import { Timestamp } from "./common.ts";

export const TokenizerFile = z.object({ path: z.string(), bytes: z.int(), sha256: z.string() });

export const Tokenizer = z
  .object({
    id: z.string().meta({ example: "tok_01m8d0fxvcpfrrd0dgccvp9czy" }),
    name: z.string(),
    manifestHash: z
      .string()
      .meta({ description: "SHA-256 of the canonical manifest: the identity." }),
    owner: z.enum(["public", "tenant"]),
    status: z
      .enum(["pending", "ready"])
      .meta({ description: "`ready` once every file is stored." }),
    quantizer: z.object({
      tokens: z.int(),
      groups: z.int(),
      codeDim: z.int(),
      codesPerGroup: z.int(),
    }),
    files: z.array(TokenizerFile),
    evaluation: TokenizerEvaluation.optional().meta({
      description:
        "A trained tokenizer's figures on its run's held-out set (docs/training.md, Evaluation); absent for one registered without them.",
    }),
    createdAt: Timestamp,
    readyAt: Timestamp.nullable(),
  })
  .meta({ id: "Tokenizer" });
export type Tokenizer = z.infer<typeof Tokenizer>;

export const TokenizerList = z.object({ tokenizers: z.array(Tokenizer) });

/** An intersection, so that the document refers to Tokenizer rather than repeating it. */
export const TokenizerWithManifest = z
  .intersection(
    Tokenizer,
    z.object({
      manifest: z
        .record(z.string(), z.unknown())
        .meta({ description: "The manifest (schema revq.tokenizer/v1)." }),
    }),
  )
  .meta({ id: "TokenizerWithManifest" });

/** What a tenant may change of its own tokenizer. */
export const TokenizerUpdate = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[^\s/][^/]*$/, "a name has no / and does not start with a space")
      .meta({ description: "A new name, unique among the tenant's tokenizers." }),
  })
  .meta({ id: "TokenizerUpdate" });
