/**
 * Requests per tenant on the routes that cost the most: image uploads, dataset uploads, job
 * creation and decode. Counted by the Workers rate-limiting binding, one binding per route
 * class ([[ratelimits]] in wrangler.toml holds each limit and period), which wrangler dev,
 * miniflare and the tests run locally too. The key is the tenant, not the API key, so that
 * minting more keys buys no more requests. A route mounts it after its router's requireKey and
 * before anything reads the body, so a refused request costs one counter call and leaves
 * nothing behind.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { tenantOf } from "./auth.ts";

const ROUTE_CLASSES = {
  images: { binding: "RATE_LIMIT_IMAGES", counted: "image uploads" },
  datasetUploads: { binding: "RATE_LIMIT_DATASET_UPLOADS", counted: "dataset uploads" },
  jobs: { binding: "RATE_LIMIT_JOBS", counted: "job creations" },
  decode: { binding: "RATE_LIMIT_DECODE", counted: "decode requests" },
} as const satisfies Record<string, { binding: keyof Env; counted: string }>;

export type RouteClass = keyof typeof ROUTE_CLASSES;

/**
 * The binding does not say when its window ends; 60 s is the longest period it allows, so a
 * client that waits this long is past the window whatever the deployment configured.
 */
const RETRY_AFTER_SECONDS = 60;

export function rateLimit(routeClass: RouteClass) {
  const { binding, counted } = ROUTE_CLASSES[routeClass];
  return createMiddleware<AppEnv>(async (c, next) => {
    const limiter = c.env[binding];
    if (!limiter) {
      throw new HttpProblem(
        500,
        "misconfigured",
        `The edge is misconfigured: no ${binding} rate-limiting binding ([[ratelimits]] in wrangler.toml).`,
      );
    }
    const { success } = await limiter.limit({ key: tenantOf(c.get("principal")) });
    if (!success) {
      throw new HttpProblem(
        429,
        "rate-limited",
        `This tenant has sent too many ${counted} in the current window; nothing was done. Retry after ${RETRY_AFTER_SECONDS} seconds.`,
        { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
      );
    }
    await next();
  });
}
