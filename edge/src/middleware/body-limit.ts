/**
 * Bounds a request's body before anything reads it, with a 413 problem that says the limit. A
 * body without Content-Length is counted as it arrives (hono's bodyLimit). Each route chooses
 * its limit per request (from its configuration, from the media type).
 */
import { MAX_JSON_BODY_BYTES, type ProblemCode } from "@revq/shared";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { HttpProblem } from "../problem.ts";
import { mediaTypeOf } from "../request-body.ts";

/** A body's limit in bytes, and the code and detail of the problem that refuses more. */
export type BodyCap = { maxSize: number; code: ProblemCode; detail: string };

/** `cap` chooses the limit of each request; undefined leaves the body to another limit. */
export function limitBody(cap: (c: Context<AppEnv>) => BodyCap | undefined) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const chosen = cap(c);
    if (!chosen) return next();
    return bodyLimit({
      maxSize: chosen.maxSize,
      onError: () => {
        throw new HttpProblem(413, chosen.code, chosen.detail);
      },
    })(c, next);
  });
}

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/;

/**
 * Every JSON body, on every route (MAX_JSON_BODY_BYTES): what it holds ends up in D1 rows and
 * in every view of them. Only bodies of a JSON media type are parsed as JSON (the test is the
 * one of Hono's validator); images, archives, token streams and tokenizer files are bounded on
 * their own routes.
 */
export const jsonBodyLimit = limitBody((c) => {
  if (!JSON_MEDIA_TYPE.test(mediaTypeOf(c.req.raw))) return undefined;
  return {
    maxSize: MAX_JSON_BODY_BYTES,
    code: "content-too-large",
    detail: `A JSON body is at most ${MAX_JSON_BODY_BYTES} bytes.`,
  };
});
