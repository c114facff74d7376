/**
 * Bounds every JSON body before anything reads it (MAX_JSON_BODY_BYTES): what it holds ends up
 * in D1 rows and in every view of them. Only bodies of a JSON media type are parsed as JSON (the
 * test is the one of Hono's validator); images, archives, token streams and tokenizer files are
 * bounded on their own routes.
 */
import { MAX_JSON_BODY_BYTES } from "@revq/shared";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { HttpProblem } from "../problem.ts";

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

const limit = bodyLimit({
  maxSize: MAX_JSON_BODY_BYTES,
  onError: () => {
    throw new HttpProblem(
      413,
      "content-too-large",
      `A JSON body is at most ${MAX_JSON_BODY_BYTES} bytes.`,
    );
  },
});

export const jsonBodyLimit = createMiddleware<AppEnv>(async (c, next) => {
  const mediaType = (c.req.header("content-type") ?? "").split(";")[0].trim();
  return JSON_MEDIA_TYPE.test(mediaType) ? limit(c, next) : next();
});
