/** The client API's dataset shapes (api/common.ts says how they are used). */
import * as z from "zod";
import { NextCursor, Timestamp } from "./common.ts";
import { Image } from "./images.ts";

export const DatasetCreate = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    prefix: z.string().min(1).max(512).optional().meta({
      description:
        "Makes a prefix dataset: the image files (.png, .jpg, .jpeg, .webp) the tenant keeps under `tenants/{tenantId}/files/{prefix}` in the bucket, put there through the S3 API. End it with `/` to name a folder. Without it, the dataset holds images uploaded to it.",
      example: "photos/2026/",
    }),
  })
  .meta({ id: "DatasetCreate" });

export const Dataset = z
  .object({
    id: z.string().meta({ example: "dst_01m8d0fxvcpfrrd0dgccvp9czy" }),
    name: z.string(),
    source: z.enum(["upload", "prefix"]),
    prefix: z.string().nullable(),
    imageCount: z.int().nullable().meta({
      description: "Null for a prefix dataset: its files are counted when a train job freezes it.",
    }),
    bytes: z.int().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: "Dataset" });
export type Dataset = z.infer<typeof Dataset>;

export const DatasetList = z
  .object({
    datasets: z.array(Dataset),
    nextCursor: NextCursor,
  })
  .meta({ id: "DatasetList" });

export const DatasetImageList = z
  .object({
    images: z.array(Image),
    nextCursor: NextCursor,
  })
  .meta({ id: "DatasetImageList" });
export type DatasetImageList = z.infer<typeof DatasetImageList>;

export const DatasetImagesAdded = z
  .object({
    added: z.int().meta({ description: "Images added by this request." }),
    imageIds: z
      .array(z.string())
      .meta({ description: "Their ids, in the order added (for an archive, its order)." }),
    dataset: Dataset,
  })
  .meta({ id: "DatasetImagesAdded", description: "`dataset` is the dataset with its new totals." });
export type DatasetImagesAdded = z.infer<typeof DatasetImagesAdded>;
