/**
 * Registering public tokenizers (admin): post the manifest, then put each file it names (or put
 * them into the bucket through the S3 door first; the larger codebooks must go that way, past
 * the Workers request-size limit). Mounted inside the admin router, which authenticates.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { ManifestBody, TokenizerRegistration as Registered } from "@revq/shared";
import { database } from "../db/client.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, json, problems } from "../schemas/common.ts";
import { manifest, tokenizer } from "../schemas/examples.ts";
import {
  ownedTokenizer,
  PUBLIC_OWNER,
  registerTokenizer,
  registrationView,
  storeTokenizerFileFrom,
} from "../services/tokenizers.ts";

const security = bearerSecurity("adminKey");
/** Registered, every file in place. */
const ready = { tokenizer, fileProblems: [] };

const register = createRoute({
  method: "post",
  path: "/",
  operationId: "registerTokenizer",
  tags: ["Admin"],
  summary: "Register a public tokenizer from its manifest",
  description:
    "Validates the manifest (schema revq.tokenizer/v1), stores it as canonical JSON and answers with the files still missing. Registering the same manifest again answers 200 with the existing tokenizer.",
  security,
  request: {
    body: {
      required: true,
      content: json(ManifestBody, manifest),
    },
  },
  responses: {
    200: { description: "Already registered", content: json(Registered, ready) },
    201: {
      description: "Registered",
      content: json(Registered, {
        tokenizer: { ...tokenizer, status: "pending", readyAt: null },
        fileProblems: tokenizer.files.map(({ path }) => ({ path, problem: "missing" })),
      }),
    },
    ...problems(400, 401, 422),
  },
});

const putFileDoc = createRoute({
  method: "put",
  path: "/{id}/files/{path}",
  operationId: "storeTokenizerFile",
  tags: ["Admin"],
  summary: "Store one file of a registered tokenizer",
  description:
    "The body must have exactly the size and SHA-256 the manifest gives for `path`. When the last file is in place the tokenizer becomes `ready`.",
  security,
  request: {
    params: z.object({
      id: z.string(),
      path: z.string().openapi({ description: "The file's path in the manifest; may contain /." }),
    }),
    body: {
      required: true,
      content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
    },
  },
  responses: {
    200: { description: "Stored", content: json(Registered, ready) },
    ...problems(401, 404, 422),
  },
});

export const adminTokenizerRoutes = newRouter();

adminTokenizerRoutes.openapi(register, async (c) => {
  const result = await registerTokenizer(c.env, database(c.env), PUBLIC_OWNER, c.req.valid("json"));
  return c.json(registrationView(result), result.created ? 201 : 200);
});

// Documented above; routed by hand because the file path may contain "/".
adminTokenizerRoutes.openAPIRegistry.registerPath(putFileDoc);
adminTokenizerRoutes.put("/:id/files/:path{.+}", async (c) => {
  const { id, path } = c.req.param();
  const db = database(c.env);
  const row = await ownedTokenizer(db, PUBLIC_OWNER, id, "the public ones");
  return c.json(
    registrationView(await storeTokenizerFileFrom(c.env, db, row, path, c.req.raw)),
    200,
  );
});
