/** Datasets: create, list, read, delete, and bulk-add images (tar, multipart or ids). */
import { createRoute, z } from "@hono/zod-openapi";
import {
  Dataset,
  DatasetCreate,
  DatasetImageList,
  DatasetImagesAdded,
  DatasetList,
  sha256Hex,
} from "@revq/shared";
import { type Config, configOf } from "../config.ts";
import { database } from "../db/client.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { limitBody } from "../middleware/body-limit.ts";
import { rateLimit } from "../middleware/rate-limit.ts";
import { HttpProblem, invalidRequest } from "../problem.ts";
import { jsonBody, readByMediaType } from "../request-body.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, json, PageQuery, problems } from "../schemas/common.ts";
import { DatasetImageIds } from "../schemas/datasets.ts";
import { dataset, ids, image, images } from "../schemas/examples.ts";

import {
  type Added,
  addExisting,
  addUploads,
  checkUploadDataset,
  createDataset,
  datasetView,
  deleteDataset,
  findDataset,
  listDatasetImages,
  listDatasets,
} from "../services/datasets.ts";
import { withIdempotency } from "../services/idempotency.ts";
import { type CheckedImage, checkImage } from "../services/images.ts";
import { checkedParts, MULTIPART_DOC } from "../services/multipart-images.ts";
import { tarFiles } from "../services/tar-files.ts";

const security = bearerSecurity("apiKey");
const IdParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: ids.dataset }),
});
const exampleIds = images.map((image) => image.id);
const create = createRoute({
  method: "post",
  path: "/",
  operationId: "createDataset",
  tags: ["Datasets"],
  summary: "Create a dataset: empty, to upload images to, or the tenant's files under a prefix",
  security,
  request: { body: { required: true, content: json(DatasetCreate, { name: dataset.name }) } },
  responses: {
    201: {
      description: "Created",
      content: json(Dataset, { ...dataset, imageCount: 0, bytes: 0, updatedAt: dataset.createdAt }),
    },
    ...problems(400, 401, 403, 422),
  },
});

const list = createRoute({
  method: "get",
  path: "/",
  operationId: "listDatasets",
  tags: ["Datasets"],
  summary: "The tenant's datasets, newest first, a page at a time",
  security,
  request: {
    query: PageQuery,
  },
  responses: {
    200: {
      description: "A page",
      content: json(DatasetList, { datasets: [dataset], nextCursor: null }),
    },
    ...problems(400, 401, 403),
  },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  operationId: "getDataset",
  tags: ["Datasets"],
  summary: "One dataset",
  security,
  request: { params: IdParams },
  responses: {
    200: { description: "The dataset", content: json(Dataset, dataset) },
    ...problems(401, 403, 404),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/{id}",
  operationId: "deleteDataset",
  tags: ["Datasets"],
  summary: "Delete a dataset (its images stay, and so do jobs already created from it)",
  security,
  request: { params: IdParams },
  responses: { 204: { description: "Deleted" }, ...problems(401, 403, 404) },
});

const listImages = createRoute({
  method: "get",
  path: "/{id}/images",
  operationId: "listDatasetImages",
  tags: ["Datasets"],
  summary: "An upload dataset's images, in the order they were added, a page at a time",
  description:
    "A prefix dataset's images are the files under its prefix (409 `dataset-not-upload`): list them through the S3 API.",
  security,
  request: { params: IdParams, query: PageQuery },
  responses: {
    200: {
      description: "A page",
      content: json(DatasetImageList, { images: [image], nextCursor: null }),
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

/** Caps every body of a bulk add at the upload limit before anything reads it. */
const addLimit = limitBody((c) => {
  const maxSize = configOf(c.env).maxUploadBytes;
  const detail = `The body is over the limit of ${maxSize} bytes per request.`;
  return { maxSize, code: "upload-too-large", detail };
});

const add = createRoute({
  method: "post",
  path: "/{id}/images",
  operationId: "addDatasetImages",
  tags: ["Datasets"],
  summary: "Add many images to an upload dataset: a tar archive, a multipart form, or image ids",
  description:
    "All or nothing: every image is checked as POST /v1/images checks one, and the first bad one refuses the request, named by its tar path, form part or id, with nothing stored. In an archive, each regular file is an image; directories, links and hidden files (macOS `._*` too) are skipped. Limits: MAX_UPLOAD_BYTES per body, MAX_DATASET_ADD_IMAGES images per request, MAX_DATASET_IMAGES per dataset. Send `Idempotency-Key` to make retries safe.",
  security,
  middleware: [rateLimit("datasetUploads"), addLimit],
  request: {
    params: IdParams,
    headers: z.object({ "idempotency-key": z.string().optional() }),
    body: {
      required: true,
      content: {
        "application/x-tar": { schema: z.string().openapi({ format: "binary" }) },
        "multipart/form-data": { schema: MULTIPART_DOC },
        // A reference, not the zod schema, which the router would enforce on every body: the
        // handler checks the ids itself (imageIds below).
        "application/json": {
          schema: { $ref: "#/components/schemas/DatasetImageIds" },
          example: { imageIds: exampleIds } satisfies z.input<typeof DatasetImageIds>,
        },
      },
    },
  },
  responses: {
    201: {
      description: "Added",
      content: json(DatasetImagesAdded, {
        added: exampleIds.length,
        imageIds: exampleIds,
        dataset,
      }),
    },
    ...problems(400, 401, 403, 404, 409, 413, 415, 422, 429),
  },
});

export const datasetRoutes = newRouter();
datasetRoutes.use("*", requireKey("api"));
datasetRoutes.openAPIRegistry.register("DatasetImageIds", DatasetImageIds);

datasetRoutes.openapi(create, async (c) => {
  const row = await createDataset(
    database(c.env),
    tenantOf(c.get("principal")),
    c.req.valid("json"),
  );
  c.header("location", `/v1/datasets/${row.id}`);
  return c.json(datasetView(row), 201);
});

datasetRoutes.openapi(list, async (c) => {
  const page = await listDatasets(
    database(c.env),
    tenantOf(c.get("principal")),
    c.req.valid("query"),
  );
  return c.json(page, 200);
});

datasetRoutes.openapi(get, async (c) => {
  const row = await findDataset(
    database(c.env),
    tenantOf(c.get("principal")),
    c.req.valid("param").id,
  );
  return c.json(datasetView(row), 200);
});

datasetRoutes.openapi(listImages, async (c) => {
  const db = database(c.env);
  const dataset = await findDataset(db, tenantOf(c.get("principal")), c.req.valid("param").id);
  return c.json(await listDatasetImages(db, dataset, c.req.valid("query")), 200);
});

datasetRoutes.openapi(remove, async (c) => {
  await deleteDataset(database(c.env), tenantOf(c.get("principal")), c.req.valid("param").id);
  return c.body(null, 204);
});

/** The checked images of a tar archive, in archive order, at most `limit` of them. */
async function* tarImages(archive: Uint8Array, config: Config): AsyncGenerator<CheckedImage> {
  let count = 0;
  for await (const file of tarFiles(new Blob([archive]).stream(), config.maxImageBytes)) {
    count += 1;
    if (count > config.maxDatasetAddImages) {
      throw new HttpProblem(
        413,
        "too-many-images",
        `The archive has more than ${config.maxDatasetAddImages} images; the limit is ${config.maxDatasetAddImages} per request.`,
      );
    }
    yield await checkImage(file.bytes, "", config, `tar entry ${JSON.stringify(file.name)}`);
  }
}

/** An add request, read: what makes two requests alike, and the work to do once for them. */
type Addition = { fingerprint: string; run: () => Promise<Added> };

datasetRoutes.openapi(add, async (c) => {
  const tenantId = tenantOf(c.get("principal"));
  const config = configOf(c.env);
  const db = database(c.env);
  const dataset = await findDataset(db, tenantId, c.req.valid("param").id);
  checkUploadDataset(dataset);
  // What makes two requests the same: the dataset (the route's key names no id) and the images.
  const fromTar = async (body: Request): Promise<Addition> => {
    const archive = new Uint8Array(await body.arrayBuffer());
    return {
      fingerprint: `tar:${await sha256Hex(archive)}`,
      run: () => addUploads(c.env, db, config, dataset, tarImages(archive, config)),
    };
  };
  const { fingerprint, run } = await readByMediaType<Addition>(c.req.raw, "images", {
    "application/x-tar": fromTar,
    "application/tar": fromTar,
    "multipart/form-data": async (body) => {
      const checked = await checkedParts(body, config, config.maxDatasetAddImages);
      return {
        fingerprint: `images:${checked.map((image) => `${image.format}:${image.sha256}`).join(",")}`,
        run: () => addUploads(c.env, db, config, dataset, checked),
      };
    },
    "application/json": async (body) => {
      const ids = await imageIds(body, config);
      return {
        fingerprint: `ids:${ids.join(",")}`,
        run: () => addExisting(db, config, dataset, ids),
      };
    },
  });
  const body = await withIdempotency(
    c,
    tenantId,
    await sha256Hex(`${dataset.id}\n${fingerprint}`),
    async () => {
      const { added, dataset: after } = await run();
      return { added: added.length, imageIds: added, dataset: datasetView(after) };
    },
  );
  return c.json(body, 201);
});

/** The ids of a JSON body, or a 400 naming what is wrong with it. */
async function imageIds(request: Request, config: Config): Promise<string[]> {
  const result = DatasetImageIds.safeParse(await jsonBody(request));
  if (!result.success) throw invalidRequest("json", result.error.issues);
  const ids = result.data.imageIds;
  if (ids.length > config.maxDatasetAddImages) {
    throw new HttpProblem(
      413,
      "too-many-images",
      `The request names ${ids.length} images; the limit is ${config.maxDatasetAddImages} per request.`,
    );
  }
  return ids;
}
