/** The dataset shape only the edge reads: it documents it by hand (routes/datasets.ts). */
import { z } from "@hono/zod-openapi";

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
