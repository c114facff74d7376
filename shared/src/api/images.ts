/** The client API's image shapes (api/common.ts says how they are used). */
import * as z from "zod";
import { Timestamp } from "./common.ts";

export const Image = z
  .object({
    id: z.string().meta({ example: "img_01m8d0fxvcpfrrd0dgccvp9czy" }),
    format: z.enum(["png", "jpeg", "webp"]),
    mediaType: z.string(),
    width: z.int(),
    height: z.int(),
    bytes: z.int(),
    sha256: z.string(),
    createdAt: Timestamp,
  })
  .meta({ id: "Image" });

export const UploadedImages = z.object({ images: z.array(Image) }).meta({ id: "UploadedImages" });
