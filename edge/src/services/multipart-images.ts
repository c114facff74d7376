/**
 * Images sent as multipart/form-data, one file part named `images` per image: how /v1/images and
 * dataset uploads read them. The form is checked here rather than by a route schema: zod-openapi
 * would validate a declared form schema for every request, raw and tar bodies included.
 */
import { z } from "@hono/zod-openapi";
import type { SchemaObject } from "openapi3-ts/oas30";
import type { Config } from "../config.ts";
import { HttpProblem, invalidRequest } from "../problem.ts";
import { type CheckedImage, checkImage } from "./images.ts";

const MultipartImages = z.strictObject(
  { images: z.union([z.instanceof(File), z.array(z.instanceof(File))]) },
  { error: "the form may hold only file parts named `images`" },
);

/** The form as the OpenAPI document shows it. */
export const MULTIPART_DOC: SchemaObject = {
  type: "object",
  required: ["images"],
  properties: {
    images: {
      type: "array",
      items: { type: "string", format: "binary" },
      description: "One part per image, each named `images`.",
    },
  },
};

/** The files of a multipart upload, or a 400 naming what is wrong with the form. */
async function multipartFiles(request: Request): Promise<File[]> {
  let form: FormData;
  try {
    form = await request.formData();
  } catch (error) {
    throw new HttpProblem(
      400,
      "invalid-multipart",
      `The multipart body does not parse: ${String(error)}`,
    );
  }
  const fields = [...new Set(form.keys())].map((name) => {
    const values = form.getAll(name);
    return [name, values.length === 1 ? values[0] : values];
  });
  const result = MultipartImages.safeParse(Object.fromEntries(fields));
  if (!result.success) {
    throw invalidRequest("form", result.error.issues, "Invalid multipart upload");
  }
  const { images } = result.data;
  return Array.isArray(images) ? images : [images];
}

/**
 * Every image part of the form, each checked (at most `limit` of them); the first bad one fails
 * the whole request, named by its index and file name.
 */
export async function checkedParts(
  request: Request,
  config: Config,
  limit: number,
): Promise<CheckedImage[]> {
  const files = await multipartFiles(request);
  if (files.length > limit) {
    throw new HttpProblem(
      413,
      "too-many-images",
      `The upload has ${files.length} images; the limit is ${limit} per request.`,
    );
  }
  return Promise.all(
    files.map(async (file, i) =>
      checkImage(
        new Uint8Array(await file.arrayBuffer()),
        file.type,
        config,
        `images[${i}]${file.name ? ` (${JSON.stringify(file.name)})` : ""}`,
      ),
    ),
  );
}
