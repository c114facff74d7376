/** The client API's tenant shapes: who a key belongs to, and its default tokenizer. */
import * as z from "zod";
import { Timestamp } from "./common.ts";

export const Tenant = z
  .object({
    id: z.string().meta({ example: "ten_01m8d0fxvcpfrrd0dgccvp9czy" }),
    name: z.string(),
    defaultTokenizer: z
      .object({
        id: z.string(),
        name: z.string(),
        manifestHash: z.string(),
        from: z.enum(["tenant", "deployment"]),
      })
      .nullable()
      .meta({
        description:
          "What a job that names no tokenizer uses: the tenant's own choice, else the deployment's DEFAULT_TOKENIZER; null when neither is set.",
      }),
    createdAt: Timestamp,
  })
  .meta({ id: "Tenant" });
export type Tenant = z.infer<typeof Tenant>;

export const DefaultTokenizerSet = z
  .strictObject({
    tokenizer: z.string().min(1).meta({
      description: "A ready tokenizer the tenant may use: its id, manifest hash or name.",
    }),
  })
  .meta({ id: "DefaultTokenizerSet" });
