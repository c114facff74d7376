import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../router.ts";
import { json } from "../schemas/common.ts";

const Health = z.object({ status: z.literal("ok"), database: z.literal("ok") }).openapi("Health");

const route = createRoute({
  method: "get",
  path: "/healthz",
  operationId: "getHealth",
  tags: ["Service"],
  summary: "Liveness, including a round trip to D1",
  responses: {
    200: {
      description: "The edge and its database answer",
      content: json(Health, { status: "ok", database: "ok" }),
    },
  },
});

export const healthRoutes = newRouter().openapi(route, async (c) => {
  // A health check that skips the database would stay green while every real route fails.
  await c.env.DB.prepare("SELECT 1").first();
  return c.json({ status: "ok" as const, database: "ok" as const }, 200);
});
