/** What a client key can learn about its own tenant. */
import { createRoute, z } from "@hono/zod-openapi";
import { Timestamp } from "@revq/shared";
import { eq } from "drizzle-orm";
import { database } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, isoTime, json, problems } from "../schemas/common.ts";
import { at, ids } from "../schemas/examples.ts";

const route = createRoute({
  method: "get",
  path: "/",
  operationId: "getTenant",
  tags: ["Tenant"],
  summary: "The tenant the key belongs to",
  security: bearerSecurity("apiKey"),
  responses: {
    200: {
      description: "The tenant",
      content: json(z.object({ id: z.string(), name: z.string(), createdAt: Timestamp }), {
        id: ids.tenant,
        name: "acme",
        createdAt: at("09:00:00"),
      }),
    },
    ...problems(401, 403),
  },
});

export const tenantRoutes = newRouter();
tenantRoutes.use("*", requireKey("api"));
tenantRoutes.openapi(route, async (c) => {
  const id = tenantOf(c.get("principal"));
  const [row] = await database(c.env).select().from(tenants).where(eq(tenants.id, id)).limit(1);
  return c.json({ id: row.id, name: row.name, createdAt: isoTime(row.createdAt) }, 200);
});
