/** The client API's tokenizer shapes (api/common.ts says how they are used). */
import * as z from "zod";
import { boundedJson, MAX_MANIFEST_BYTES } from "../protocol/json-limits.ts";
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

/** A name a tenant gives its tokenizer: one path segment, so that it can name it in a URL. */
export const TokenizerName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[^\s/][^/]*$/, "a name has no / and does not start with a space");

/** What a tenant may change of its own tokenizer. */
export const TokenizerUpdate = z
  .strictObject({
    name: TokenizerName.meta({ description: "A new name, unique among the tenant's tokenizers." }),
  })
  .meta({ id: "TokenizerUpdate" });

/** A manifest sent to be registered (parseManifest checks it: the schema only bounds its size). */
export const ManifestBody = boundedJson(z.record(z.string(), z.unknown()), MAX_MANIFEST_BYTES).meta(
  {
    description: `A tokenizer manifest (schema revq.tokenizer/v1), at most ${MAX_MANIFEST_BYTES} bytes as JSON.`,
  },
);

/** A registered manifest, and which of its files are not yet in the bucket as it pins them. */
export const TokenizerRegistration = z
  .object({
    tokenizer: Tokenizer,
    fileProblems: z
      .array(z.object({ path: z.string(), problem: z.string() }))
      .meta({ description: "Files not yet in the bucket as the manifest pins them." }),
  })
  .meta({ id: "TokenizerRegistration" });
export type TokenizerRegistration = z.infer<typeof TokenizerRegistration>;
