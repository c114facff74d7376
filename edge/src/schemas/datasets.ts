/** The client API's dataset shapes. */
import { z } from "@hono/zod-openapi";
import { NextCursor, Timestamp } from "./common.ts";

export const DatasetCreate = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    prefix: z.string().min(1).max(512).optional().openapi({
      description:
        "Makes a prefix dataset: the image files (.png, .jpg, .jpeg, .webp) the tenant keeps under `tenants/{tenantId}/files/{prefix}` in the bucket, put there through the S3 API. End it with `/` to name a folder. Without it, the dataset holds images uploaded to it.",
      example: "photos/2026/",
    }),
  })
  .openapi("DatasetCreate");

export const Dataset = z
  .object({
    id: z.string().openapi({ example: "dst_01m8d0fxvcpfrrd0dgccvp9czy" }),
    name: z.string(),
    source: z.enum(["upload", "prefix"]),
    prefix: z.string().nullable(),
    imageCount: z.int().nullable().openapi({
      description: "Null for a prefix dataset: its files are counted when a train job freezes it.",
    }),
    bytes: z.int().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Dataset");

export const DatasetList = z
  .object({
    datasets: z.array(Dataset),
    nextCursor: NextCursor,
  })
  .openapi("DatasetList");

/**
 * The JSON body of a bulk add. The handler checks it (with the deployment's count limit): the
 * route also takes tar and multipart bodies, which a route schema would refuse.
 */
export const DatasetImageIds = z
  .strictObject({
    imageIds: z
      .array(z.string().min(1))
      .min(1)
      .refine((ids) => new Set(ids).size === ids.length, "image ids must not repeat")
      .openapi({
        description:
          "Images already uploaded with POST /v1/images, added in this order; at most MAX_DATASET_ADD_IMAGES (500 by default).",
      }),
  })
  .openapi("DatasetImageIds");

export const DatasetImagesAdded = z
  .object({
    added: z.int().openapi({ description: "Images added by this request." }),
    imageIds: z
      .array(z.string())
      .openapi({ description: "Their ids, in the order added (for an archive, its order)." }),
    dataset: Dataset.openapi({ description: "The dataset with its new totals." }),
  })
  .openapi("DatasetImagesAdded");
