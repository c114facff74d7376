/**
 * The OpenAPI 3.1 document of the whole API, generated from the routes' own zod schemas, and a
 * reference page that renders it. The page is self-contained (no CDN): the edge must work, and
 * its docs must render, with no outside network.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.ts";
import { REFERENCE_PAGE } from "./reference-page.ts";

export const OPENAPI_PATH = "/v1/openapi.json";

export function mountOpenApi(app: OpenAPIHono<AppEnv>): void {
  const bearer = (description: string) => ({
    type: "http" as const,
    scheme: "bearer",
    description,
  });
  app.openAPIRegistry.registerComponent(
    "securitySchemes",
    "apiKey",
    bearer("A tenant's api key, `rvq_api_...`."),
  );
  app.openAPIRegistry.registerComponent(
    "securitySchemes",
    "workerKey",
    bearer("A tenant's worker key, `rvq_wrk_...`: the worker API only."),
  );
  app.openAPIRegistry.registerComponent(
    "securitySchemes",
    "adminKey",
    bearer("The deployment's ADMIN_KEY secret."),
  );
  app.doc31(OPENAPI_PATH, (c) => ({
    openapi: "3.1.0",
    info: {
      title: "revq edge API",
      version: "1",
      description:
        "Uploads, jobs, the GPU task queue, token download, decoding and webhooks of revq. Errors are RFC 9457 problem documents; see docs/api.md.",
    },
    servers: [{ url: new URL(c.req.url).origin }],
  }));
  app.get("/v1/reference", (c) => c.html(REFERENCE_PAGE));
}
