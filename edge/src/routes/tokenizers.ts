/** Tokenizers a tenant can use: listing, manifests and file downloads. */
import { createRoute, z } from "@hono/zod-openapi";
import {
  bucketKeys,
  ManifestBody,
  manifestFiles,
  Tokenizer,
  TokenizerList,
  TokenizerRegistration,
  TokenizerUpdate,
  TokenizerWithManifest,
} from "@revq/shared";
import { and, desc, eq } from "drizzle-orm";
import { database } from "../db/client.ts";
import { tokenizers } from "../db/schema.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { HttpProblem } from "../problem.ts";
import { newRouter } from "../router.ts";
import { answerHeaders, bearerSecurity, json, problems } from "../schemas/common.ts";
import { ids, manifest, tokenizer } from "../schemas/examples.ts";
import { serveObject } from "../services/objects/serve.ts";
import { uploadTokenizer } from "../services/tokenizer-uploads.ts";
import {
  deleteTokenizer,
  findTokenizer,
  manifestOf,
  ownedTokenizer,
  registrationView,
  renameTokenizer,
  requireReady,
  storeTokenizerFileFrom,
  tokenizerView,
  visibleTo,
} from "../services/tokenizers.ts";

const security = bearerSecurity("apiKey");
const IdParams = z.object({
  id: z.string().openapi({
    param: { name: "id", in: "path" },
    description: "Tokenizer id, manifest hash or name.",
    example: ids.tokenizer,
  }),
});
const IMMUTABLE = "private, max-age=31536000, immutable";
const ownTokenizerExample = { ...tokenizer, owner: "tenant" as const };
const registered = { tokenizer: ownTokenizerExample, fileProblems: [] };
const pendingRegistration = {
  tokenizer: { ...ownTokenizerExample, status: "pending" as const, readyAt: null },
  fileProblems: [{ path: "codebook.safetensors", problem: "missing" }],
};

const list = createRoute({
  method: "get",
  path: "/",
  operationId: "listTokenizers",
  tags: ["Tokenizers"],
  summary: "Tokenizers this tenant can use (public ones and its own), newest first",
  security,
  request: {
    query: z.object({ status: z.enum(["pending", "ready", "all"]).default("ready") }),
  },
  responses: {
    200: {
      description: "The tokenizers",
      content: json(TokenizerList, { tokenizers: [tokenizer] }),
    },
    ...problems(400, 401, 403),
  },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  operationId: "getTokenizer",
  tags: ["Tokenizers"],
  summary: "One tokenizer, with its manifest",
  security,
  request: { params: IdParams },
  responses: {
    200: {
      description: "The tokenizer",
      content: json(TokenizerWithManifest, { ...tokenizer, manifest }),
    },
    ...problems(401, 403, 404),
  },
});

const update = createRoute({
  method: "patch",
  path: "/{id}",
  operationId: "updateTokenizer",
  tags: ["Tokenizers"],
  summary: "Rename one of the tenant's own tokenizers",
  security,
  request: {
    params: IdParams,
    body: { required: true, content: json(TokenizerUpdate, { name: "photos-512" }) },
  },
  responses: {
    200: {
      description: "The tokenizer, renamed",
      content: json(Tokenizer, { ...tokenizer, name: "photos-512", owner: "tenant" }),
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/{id}",
  operationId: "deleteTokenizer",
  tags: ["Tokenizers"],
  summary: "Delete one of the tenant's own tokenizers",
  description:
    "It serves no new job and is listed nowhere; if it was the tenant's default, the deployment's default applies again. Jobs already queued with it finish, their tokens stay downloadable, and POST /v1/decode still decodes tokens made with it (found by the hash they carry); a reconstruct job of them is a new job and is refused.",
  security,
  request: { params: IdParams },
  responses: { 204: { description: "Deleted" }, ...problems(401, 403, 404) },
});

const manifestDoc = createRoute({
  method: "get",
  path: "/{id}/manifest.json",
  operationId: "getTokenizerManifest",
  tags: ["Tokenizers"],
  summary: "The manifest exactly as hashed (canonical JSON): its SHA-256 is the manifest hash",
  security,
  request: { params: IdParams },
  responses: {
    200: {
      description: "The canonical manifest",
      content: json(z.record(z.string(), z.unknown()), manifest),
    },
    ...problems(401, 403, 404),
  },
});

const fileDoc = createRoute({
  method: "get",
  path: "/{id}/files/{path}",
  operationId: "downloadTokenizerFile",
  tags: ["Tokenizers"],
  summary: "Download one of the tokenizer's files (Range, ETag = its SHA-256)",
  security,
  request: {
    params: z.object({
      id: z.string(),
      path: z.string().openapi({ description: "May contain /." }),
    }),
  },
  responses: {
    200: {
      description: "The file's bytes, as the manifest pins them (size and SHA-256)",
      headers: answerHeaders({
        etag: {
          description: "The file's SHA-256, quoted",
          example: `"${tokenizer.files[0].sha256}"`,
        },
      }),
      content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
    },
    206: { description: "The requested range" },
    304: { description: "Not modified" },
    ...problems(401, 403, 404),
  },
});

const upload = createRoute({
  method: "post",
  path: "/",
  operationId: "uploadTokenizer",
  tags: ["Tokenizers"],
  summary: "Upload a tokenizer trained offline (`revq-train`): its manifest, then its files",
  description:
    "Registers the manifest as the tenant's own tokenizer and answers with the files still missing: put each with PUT /v1/tokenizers/{id}/files/{path}; the tokenizer is `ready` when the last is in place. A file the bucket already holds under a tokenizer the tenant can see (the base tokenizer's VAE weights, say) is copied, not uploaded. The manifest's name must be free among the tenant's tokenizers (409). The same manifest again answers 200 with the existing tokenizer.",
  security,
  request: { body: { required: true, content: json(ManifestBody, manifest) } },
  responses: {
    200: { description: "Already registered", content: json(TokenizerRegistration, registered) },
    201: {
      description: "Registered; `fileProblems` lists what to upload",
      content: json(TokenizerRegistration, pendingRegistration),
    },
    ...problems(400, 401, 403, 409, 422),
  },
});

const putFileDoc = createRoute({
  method: "put",
  path: "/{id}/files/{path}",
  operationId: "uploadTokenizerFile",
  tags: ["Tokenizers"],
  summary: "Upload one file of the tenant's own tokenizer",
  description:
    "The body must have exactly the size (Content-Length) and SHA-256 the manifest gives for `path`; a body that differs is not kept. When the last file is in place the tokenizer becomes `ready`.",
  security,
  request: {
    params: z.object({
      id: z.string().openapi({ description: "The tokenizer's id.", example: ids.tokenizer }),
      path: z.string().openapi({ description: "The file's path in the manifest; may contain /." }),
    }),
    body: {
      required: true,
      content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
    },
  },
  responses: {
    200: { description: "Stored", content: json(TokenizerRegistration, registered) },
    ...problems(401, 403, 404, 411, 422),
  },
});

export const tokenizerRoutes = newRouter();
tokenizerRoutes.use("*", requireKey("api"));

tokenizerRoutes.openapi(list, async (c) => {
  const tenantId = tenantOf(c.get("principal"));
  const { status } = c.req.valid("query");
  const rows = await database(c.env)
    .select()
    .from(tokenizers)
    .where(
      status === "all"
        ? visibleTo(tenantId)
        : and(visibleTo(tenantId), eq(tokenizers.status, status)),
    )
    .orderBy(desc(tokenizers.id));
  return c.json({ tokenizers: rows.map(tokenizerView) }, 200);
});

tokenizerRoutes.openapi(get, async (c) => {
  const row = await findTokenizer(
    database(c.env),
    tenantOf(c.get("principal")),
    c.req.valid("param").id,
  );
  return c.json({ ...tokenizerView(row), manifest: JSON.parse(row.manifest) }, 200);
});

tokenizerRoutes.openapi(update, async (c) => {
  const row = await renameTokenizer(
    database(c.env),
    tenantOf(c.get("principal")),
    c.req.valid("param").id,
    c.req.valid("json").name,
  );
  return c.json(tokenizerView(row), 200);
});

tokenizerRoutes.openapi(remove, async (c) => {
  await deleteTokenizer(database(c.env), tenantOf(c.get("principal")), c.req.valid("param").id);
  return c.body(null, 204);
});

// Documented above and routed by hand: the manifest is sent byte for byte as hashed (not
// re-serialised by c.json), and a file path may contain "/".
tokenizerRoutes.openAPIRegistry.registerPath(manifestDoc);
tokenizerRoutes.get("/:id/manifest.json", async (c) => {
  const row = await findTokenizer(database(c.env), tenantOf(c.get("principal")), c.req.param("id"));
  return c.body(row.manifest, 200, {
    "content-type": "application/json",
    etag: `"${row.manifestHash}"`,
    "cache-control": IMMUTABLE,
  });
});

tokenizerRoutes.openAPIRegistry.registerPath(fileDoc);
tokenizerRoutes.get("/:id/files/:path{.+}", async (c) => {
  const { id, path } = c.req.param();
  const row = await findTokenizer(database(c.env), tenantOf(c.get("principal")), id);
  const ref = manifestFiles(manifestOf(row)).find((f) => f.path === path);
  if (!ref)
    throw new HttpProblem(
      404,
      "file-not-in-manifest",
      `Tokenizer ${row.id} has no file ${JSON.stringify(path)}.`,
    );
  requireReady(row);
  return serveObject(c.req.raw, {
    bucket: c.env.BUCKET,
    key: bucketKeys.tokenizerFile(row.manifestHash, path),
    size: ref.bytes,
    etag: `"${ref.sha256}"`,
    contentType: "application/octet-stream",
    cacheControl: IMMUTABLE,
  });
});

tokenizerRoutes.openapi(upload, async (c) => {
  const result = await uploadTokenizer(
    c.env,
    database(c.env),
    tenantOf(c.get("principal")),
    c.req.valid("json"),
  );
  return c.json(registrationView(result), result.created ? 201 : 200);
});

// Documented above; routed by hand because the file path may contain "/".
tokenizerRoutes.openAPIRegistry.registerPath(putFileDoc);
tokenizerRoutes.put("/:id/files/:path{.+}", async (c) => {
  const { id, path } = c.req.param();
  const db = database(c.env);
  const row = await ownedTokenizer(db, tenantOf(c.get("principal")), id, "this tenant's own");
  return c.json(
    registrationView(await storeTokenizerFileFrom(c.env, db, row, path, c.req.raw)),
    200,
  );
});
