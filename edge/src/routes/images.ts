/** Image uploads (raw body or multipart) and their metadata and content. */
import { createRoute, z } from "@hono/zod-openapi";
import { Image, sha256Hex, UploadedImages } from "@revq/shared";
import { and, eq } from "drizzle-orm";
import type { AppEnv } from "../app-env.ts";
import { type Config, configOf } from "../config.ts";
import { database } from "../db/client.ts";
import { images } from "../db/schema.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { limitBody } from "../middleware/body-limit.ts";
import { rateLimit } from "../middleware/rate-limit.ts";
import { HttpProblem } from "../problem.ts";
import { readByMediaType } from "../request-body.ts";
import { newRouter } from "../router.ts";
import { answerHeaders, bearerSecurity, json, problems } from "../schemas/common.ts";
import { ids, image, images as uploadedImages } from "../schemas/examples.ts";
import { withIdempotency } from "../services/idempotency.ts";
import { IMAGE_MEDIA_TYPES } from "../services/image-header.ts";
import { type CheckedImage, checkImage, imageView, storeImages } from "../services/images.ts";
import { checkedParts, MULTIPART_DOC } from "../services/multipart-images.ts";
import { serveObject } from "../services/objects/serve.ts";

const Binary = z.string().openapi({ format: "binary" });

const IdParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.image }),
});

const security = bearerSecurity("apiKey");

/**
 * Caps the body before anything reads it: one image's limit for a raw body, the whole upload's
 * for multipart.
 */
const uploadLimit = limitBody((c) => {
  const config = configOf(c.env);
  if (/^multipart\//i.test(c.req.header("content-type") ?? "")) {
    const maxSize = config.maxUploadBytes;
    const detail = `The upload is over the limit of ${maxSize} bytes in all.`;
    return { maxSize, code: "upload-too-large", detail };
  }
  const maxSize = config.maxImageBytes;
  const detail = `The body is over the limit of ${maxSize} bytes per image.`;
  return { maxSize, code: "image.too-large", detail };
});

const upload = createRoute({
  method: "post",
  path: "/",
  operationId: "uploadImages",
  tags: ["Images"],
  summary: "Upload one image (raw body) or several (multipart/form-data, parts named `images`)",
  description:
    "Images are checked by their bytes: PNG, JPEG or WebP, header readable, within the byte and pixel limits. A declared type that disagrees with the bytes is refused. Send `Idempotency-Key` to make retries safe.",
  security,
  middleware: [rateLimit("images"), uploadLimit],
  request: {
    headers: z.object({
      "idempotency-key": z
        .string()
        .optional()
        .openapi({ description: "Makes a retry return the first answer." }),
    }),
    body: {
      required: true,
      content: {
        "image/png": { schema: Binary },
        "image/jpeg": { schema: Binary },
        "image/webp": { schema: Binary },
        "multipart/form-data": { schema: MULTIPART_DOC },
      },
    },
  },
  responses: {
    201: { description: "Stored", content: json(UploadedImages, { images: uploadedImages }) },
    ...problems(400, 401, 403, 409, 413, 415, 422, 429),
  },
});

const getImage = createRoute({
  method: "get",
  path: "/{id}",
  operationId: "getImage",
  tags: ["Images"],
  summary: "An image's metadata",
  security,
  request: { params: IdParams },
  responses: {
    200: { description: "The image", content: json(Image, image) },
    ...problems(401, 403, 404),
  },
});

const getContent = createRoute({
  method: "get",
  path: "/{id}/content",
  operationId: "downloadImage",
  tags: ["Images"],
  summary: "An image's bytes, as uploaded",
  security,
  request: { params: IdParams },
  responses: {
    200: {
      description: "The image's bytes, exactly as uploaded, of its own media type",
      headers: answerHeaders({
        etag: { description: "The image's SHA-256, quoted", example: `"${image.sha256}"` },
      }),
      content: Object.fromEntries(
        Object.values(IMAGE_MEDIA_TYPES).map((t) => [t, { schema: Binary }]),
      ),
    },
    206: { description: "The requested range" },
    304: { description: "Not modified (If-None-Match)" },
    ...problems(401, 403, 404),
  },
});

async function findImage(c: { env: AppEnv["Bindings"] }, tenantId: string, id: string) {
  const [row] = await database(c.env)
    .select()
    .from(images)
    .where(and(eq(images.id, id), eq(images.tenantId, tenantId)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "image-not-found", `No image ${id}.`);
  return row;
}

/** Every image of the request, each checked; the first bad one fails the whole upload. */
function checkedUploads(request: Request, config: Config): Promise<CheckedImage[]> {
  const raw = async (body: Request) => [
    await checkImage(
      new Uint8Array(await body.arrayBuffer()),
      body.headers.get("content-type") ?? "",
      config,
      "The body",
    ),
  ];
  return readByMediaType(request, "images", {
    ...Object.fromEntries(Object.values(IMAGE_MEDIA_TYPES).map((type) => [type, raw])),
    "multipart/form-data": (body) => checkedParts(body, config, config.maxImagesPerRequest),
  });
}

export const imageRoutes = newRouter();
imageRoutes.use("*", requireKey("api"));

imageRoutes.openapi(upload, async (c) => {
  const tenantId = tenantOf(c.get("principal"));
  const config = configOf(c.env);
  const checked = await checkedUploads(c.req.raw, config);
  // The fingerprint is what was uploaded, not how: a retried multipart body has a new boundary.
  const fingerprint = await sha256Hex(
    checked.map((image) => `${image.format}:${image.sha256}`).join(","),
  );
  const body = await withIdempotency(c, tenantId, fingerprint, async () => {
    const rows = await storeImages(c.env, database(c.env), tenantId, checked);
    return { images: rows.map(imageView) };
  });
  return c.json(body, 201);
});

imageRoutes.openapi(getImage, async (c) => {
  const row = await findImage(c, tenantOf(c.get("principal")), c.req.valid("param").id);
  return c.json(imageView(row), 200);
});

imageRoutes.openapi(getContent, async (c) => {
  const row = await findImage(c, tenantOf(c.get("principal")), c.req.valid("param").id);
  return serveObject(c.req.raw, {
    bucket: c.env.BUCKET,
    key: row.bucketKey,
    size: row.bytes,
    etag: `"${row.sha256}"`,
    contentType: IMAGE_MEDIA_TYPES[row.format],
    cacheControl: "private, max-age=31536000, immutable",
  });
});
