/** Tokens a client sends, to reconstruct: POST /v1/tokens, and GET /v1/tokens/{id}. */
import { createRoute, z } from "@hono/zod-openapi";
import {
  MAX_UPLOADED_TOKEN_RECORDS,
  NPY_MEDIA_TYPE,
  TOKEN_STREAM_MEDIA_TYPE,
  UploadedTokens,
} from "@revq/shared";
import { database } from "../db/client.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { limitBody } from "../middleware/body-limit.ts";
import { rateLimit } from "../middleware/rate-limit.ts";
import { invalidRequest } from "../problem.ts";
import { jsonBody, readByMediaType } from "../request-body.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, json, problems, TokenDocument } from "../schemas/common.ts";
import { ids, tokenDocument, uploadedTokens } from "../schemas/examples.ts";
import { streamSource } from "../services/decode.ts";
import { findUploadedTokens, type TokenUpload, uploadTokens } from "../services/token-uploads.ts";

/**
 * A token stream or .npy body is at most this big: MAX_UPLOADED_TOKEN_RECORDS records of 2 048
 * int64 ids fit; a JSON body takes the edge-wide JSON limit first (middleware/body-limit.ts).
 */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

const Query = z.object({
  tokenizer: z.string().min(1).optional().openapi({
    description:
      "The tokenizer (id or manifest hash). Required for `.npy`, which names none; otherwise it must be the one the tokens name (422).",
  }),
});

const security = bearerSecurity("apiKey");
const binary = { schema: { type: "string" as const, format: "binary" } };

const upload = createRoute({
  method: "post",
  path: "/",
  operationId: "uploadTokens",
  tags: ["Tokens"],
  summary: "Upload tokens (a model's output, say) to reconstruct as images",
  description: `The body is a token stream (\`${TOKEN_STREAM_MEDIA_TYPE}\`), the JSON token document (\`application/json\`), or an integer \`.npy\` of shape (N, T) (\`${NPY_MEDIA_TYPE}\`, with \`?tokenizer=\`). The tokens are checked against their tokenizer as POST /v1/decode checks them (T, K and G, every id below K, at most ${MAX_UPLOADED_TOKEN_RECORDS} records) and kept as a token stream; a reconstruct job takes them as \`inputs: {"tokens": "tks_..."}\`.`,
  security,
  request: {
    query: Query,
    body: {
      required: true,
      content: {
        [TOKEN_STREAM_MEDIA_TYPE]: binary,
        ...json(TokenDocument, tokenDocument),
        [NPY_MEDIA_TYPE]: binary,
      },
    },
  },
  responses: {
    201: { description: "Kept", content: json(UploadedTokens, uploadedTokens) },
    ...problems(400, 401, 403, 409, 413, 415, 422, 429),
  },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  operationId: "getUploadedTokens",
  tags: ["Tokens"],
  summary: "Uploaded tokens: their tokenizer and size",
  security,
  request: {
    params: z.object({
      id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.tokens }),
    }),
  },
  responses: {
    200: { description: "The uploaded tokens", content: json(UploadedTokens, uploadedTokens) },
    ...problems(401, 403, 404),
  },
});

/** The body in the form its media type says, read no further than its form needs. */
function uploadOf(request: Request): Promise<TokenUpload> {
  return readByMediaType<TokenUpload>(request, "tokens", {
    [TOKEN_STREAM_MEDIA_TYPE]: async (body) => ({
      form: "stream",
      source: await streamSource(body.body ?? new Blob().stream()),
    }),
    "application/json": async (body) => ({ form: "json", document: await jsonBody(body) }),
    [NPY_MEDIA_TYPE]: async (body) => ({
      form: "npy",
      bytes: new Uint8Array(await body.arrayBuffer()),
    }),
  });
}

export const tokenUploadRoutes = newRouter();
tokenUploadRoutes.use("*", requireKey("api"));

// Documented above and routed by hand: the body is bytes in one of two forms, or JSON.
tokenUploadRoutes.openAPIRegistry.registerPath(upload);
tokenUploadRoutes.post(
  "/",
  rateLimit("decode"),
  limitBody(() => ({
    maxSize: MAX_BODY_BYTES,
    code: "upload-too-large",
    detail: `An upload of tokens is at most ${MAX_BODY_BYTES} bytes.`,
  })),
  async (c) => {
    const query = Query.safeParse(c.req.query());
    if (!query.success) throw invalidRequest("query", query.error.issues);
    const uploaded = await uploadTokens(
      c.env.BUCKET,
      database(c.env),
      tenantOf(c.get("principal")),
      await uploadOf(c.req.raw),
      query.data.tokenizer,
    );
    return c.json(uploaded, 201);
  },
);

tokenUploadRoutes.openapi(get, async (c) =>
  c.json(
    await findUploadedTokens(c.env.BUCKET, tenantOf(c.get("principal")), c.req.valid("param").id),
    200,
  ),
);
