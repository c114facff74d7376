/**
 * A succeeded reconstruct job's output images, one PNG per record of the tokens it took, and the
 * latents it decoded them from if it was asked for them, served from the bucket. Size and ETag were recorded when the worker completed the job, so a 304 (or
 * a 416) costs no R2 call; the images never change after that, so they are cached as immutable.
 */
import { bucketKeys, NPY_MEDIA_TYPE } from "@revq/shared";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";
import { serveObject } from "../objects/serve.ts";
import { succeededResult } from "./outputs.ts";
import type { JobRow } from "./read.ts";

/** Where a client downloads image `index` of a job. */
export function jobImagePath(jobId: string, index: number): string {
  return `/v1/jobs/${jobId}/images/${index}`;
}

/** `index` as the path gives it: only a plain decimal (no sign, no leading zero) names an image. */
function imageIndex(index: string): number | undefined {
  return /^(0|[1-9][0-9]{0,8})$/.test(index) ? Number(index) : undefined;
}

export async function jobImageResponse(
  env: Env,
  request: Request,
  job: JobRow,
  index: string,
): Promise<Response> {
  const { images } = succeededResult(job, "reconstruct", "images");
  const at = imageIndex(index);
  const image = at === undefined ? undefined : images[at];
  if (at === undefined || !image) {
    throw new HttpProblem(
      404,
      "image-not-found",
      `Job ${job.id} has images 0 to ${images.length - 1}; there is no image ${JSON.stringify(index)}.`,
    );
  }
  return serveObject(request, {
    bucket: env.BUCKET,
    key: bucketKeys.jobImage(job.tenantId, job.id, at),
    size: image.bytes,
    etag: `"${image.etag}"`,
    contentType: "image/png",
    cacheControl: "private, max-age=31536000, immutable",
  });
}

/** Where a client downloads a reconstruct job's latents. */
export function jobLatentsPath(jobId: string): string {
  return `/v1/jobs/${jobId}/latents`;
}

export async function jobLatentsResponse(env: Env, request: Request, job: JobRow) {
  const { latents } = succeededResult(job, "reconstruct", "latents");
  if (!latents) {
    throw new HttpProblem(
      404,
      "latents-not-kept",
      `Job ${job.id} was not asked for its latents: create a reconstruct job with "latents": true.`,
    );
  }
  return serveObject(request, {
    bucket: env.BUCKET,
    key: bucketKeys.jobLatents(job.tenantId, job.id),
    size: latents.bytes,
    etag: `"${latents.etag}"`,
    contentType: NPY_MEDIA_TYPE,
    cacheControl: "private, max-age=31536000, immutable",
  });
}
