/**
 * The edge's HTTP surface: one Hono app, every route validated by zod schemas that also make
 * the OpenAPI document, every error a problem+json answer.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./app-env.ts";
import { jsonBodyLimit } from "./middleware/body-limit.ts";
import { HttpProblem, problemResponse, toProblem } from "./problem.ts";
import { newRouter } from "./router.ts";
import { adminRoutes } from "./routes/admin.ts";
import { datasetRoutes } from "./routes/datasets.ts";
import { decodeRoutes } from "./routes/decode.ts";
import { healthRoutes } from "./routes/health.ts";
import { imageRoutes } from "./routes/images.ts";
import { jobRoutes } from "./routes/jobs.ts";
import { mountOpenApi } from "./routes/openapi.ts";
import { tenantRoutes } from "./routes/tenant.ts";
import { tokenUploadRoutes } from "./routes/token-uploads.ts";
import { tokenizerRoutes } from "./routes/tokenizers.ts";
import { tokenRoutes } from "./routes/tokens.ts";
import { webhookRoutes } from "./routes/webhooks.ts";
import { workerRoutes } from "./routes/worker.ts";

export function createApp(): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.onError((error, c) => {
    const problem = toProblem(error);
    if (problem.status >= 500) console.error(`${c.req.method} ${c.req.path}:`, error);
    return problemResponse(problem, c.req.path);
  });
  app.notFound((c) =>
    problemResponse(
      new HttpProblem(404, "route-not-found", `No route ${c.req.method} ${c.req.path}.`),
      c.req.path,
    ),
  );
  app.use("/v1/*", jsonBodyLimit);
  // Each router authenticates every route under its own base path (see middleware/auth.ts).
  app.route("/", healthRoutes);
  app.route("/v1/admin", adminRoutes);
  app.route("/v1/tenant", tenantRoutes);
  app.route("/v1/images", imageRoutes);
  app.route("/v1/datasets", datasetRoutes);
  app.route("/v1/tokenizers", tokenizerRoutes);
  // Before the jobs router: the token download authenticates itself, in its one query.
  app.route("/v1/jobs", tokenRoutes);
  app.route("/v1/jobs", jobRoutes);
  app.route("/v1/worker", workerRoutes);
  app.route("/v1/decode", decodeRoutes);
  app.route("/v1/tokens", tokenUploadRoutes);
  app.route("/v1/webhooks", webhookRoutes);
  mountOpenApi(app);
  return app;
}

export const app = createApp();
