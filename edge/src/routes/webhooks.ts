/** Webhook endpoints of a tenant, their deliveries, and redelivery. */

import { createRoute, z } from "@hono/zod-openapi";
import {
  WebhookCreate,
  WebhookCreated,
  WebhookDelivery,
  WebhookDeliveryList,
  type WebhookEvent,
  WebhookList,
} from "@revq/shared";
import { and, asc, desc, eq, inArray, lt, param, type SQL, sql } from "drizzle-orm";
import { configOf } from "../config.ts";
import { chunked, type Db, database } from "../db/client.ts";
import { tenants, webhookAttempts, webhookDeliveries, webhookEndpoints } from "../db/schema.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { HttpProblem } from "../problem.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, isoTime, json, PageQuery, problems } from "../schemas/common.ts";
import { at, delivery, ids, webhook } from "../schemas/examples.ts";
import { decodeCursor, encodeCursor } from "../services/cursor.ts";
import { newId } from "../services/ids.ts";
import { ID_CHUNK } from "../services/job-limits.ts";
import {
  type DeliveryRow,
  MAX_WEBHOOK_ENDPOINTS,
  redeliver,
} from "../services/webhooks/deliveries.ts";
import { newSigningSecret, sealSecret } from "../services/webhooks/secret.ts";
import { checkWebhookTarget } from "../services/webhooks/target.ts";

const security = bearerSecurity("apiKey");
/** A path id, shown with an example of its kind. */
const idParams = (example: string) =>
  z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, example }) });
const IdParams = idParams(ids.webhook);

const create = createRoute({
  method: "post",
  path: "/",
  operationId: "createWebhook",
  tags: ["Webhooks"],
  summary: "Register a webhook endpoint (its signing secret is shown once)",
  description: `A tenant has at most ${MAX_WEBHOOK_ENDPOINTS} endpoints; one more is a 422 \`too-many-webhooks\`.`,
  security,
  request: {
    body: {
      required: true,
      content: json(WebhookCreate, { url: webhook.url, events: webhook.events }),
    },
  },
  responses: {
    201: {
      description: "Registered",
      content: json(WebhookCreated, {
        ...webhook,
        secret: "whsec_7ay0DKVR07695p4HNFlGqAeKQhfh90U6Vv5aA2E7bzI=",
      }),
    },
    ...problems(400, 401, 403, 422),
  },
});

const list = createRoute({
  method: "get",
  path: "/",
  operationId: "listWebhooks",
  tags: ["Webhooks"],
  summary: "The tenant's webhook endpoints",
  security,
  responses: {
    200: { description: "The endpoints", content: json(WebhookList, { webhooks: [webhook] }) },
    ...problems(401, 403),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/{id}",
  operationId: "deleteWebhook",
  tags: ["Webhooks"],
  summary: "Delete an endpoint; its pending deliveries fail",
  security,
  request: { params: IdParams },
  responses: { 204: { description: "Deleted" }, ...problems(401, 403, 404) },
});

const deliveries = createRoute({
  method: "get",
  path: "/{id}/deliveries",
  operationId: "listWebhookDeliveries",
  tags: ["Webhooks"],
  summary: "An endpoint's deliveries, newest first, a page at a time, with every attempt",
  security,
  request: { params: IdParams, query: PageQuery },
  responses: {
    200: {
      description: "A page",
      content: json(WebhookDeliveryList, { deliveries: [delivery], nextCursor: null }),
    },
    ...problems(400, 401, 403, 404),
  },
});

const redeliverRoute = createRoute({
  method: "post",
  path: "/deliveries/{id}/redeliver",
  operationId: "redeliverWebhookDelivery",
  tags: ["Webhooks"],
  summary:
    "Send a delivery again (same message and webhook-id, a new delivery with its own attempts)",
  security,
  request: { params: idParams(ids.delivery) },
  responses: {
    202: {
      description: "Queued",
      content: json(WebhookDelivery, {
        ...delivery,
        id: "dlv_01m8d2k4w9q7zr3xh5tbn6e8yc",
        status: "pending",
        nextAttemptAt: at("10:30:00"),
        createdAt: at("10:30:00"),
        attempts: [],
      }),
    },
    ...problems(401, 403, 404),
  },
});

function endpointView(row: typeof webhookEndpoints.$inferSelect) {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    createdAt: isoTime(row.createdAt),
  };
}

/** Deliveries with their attempts, as the API shows them. */
export async function deliveryViews(db: Db, rows: DeliveryRow[]) {
  const attempts = new Map(rows.map((r) => [r.id, [] as (typeof webhookAttempts.$inferSelect)[]]));
  for (const chunk of chunked([...attempts.keys()], ID_CHUNK)) {
    const found = await db
      .select()
      .from(webhookAttempts)
      .where(inArray(webhookAttempts.deliveryId, chunk))
      .orderBy(asc(webhookAttempts.attempt));
    for (const a of found) attempts.get(a.deliveryId)?.push(a);
  }
  return rows.map((row) => ({
    id: row.id,
    endpointId: row.endpointId,
    jobId: row.jobId,
    url: row.url,
    messageId: row.messageId,
    eventType: row.eventType as WebhookEvent,
    status: row.status,
    nextAttemptAt: row.nextAttemptAt === null ? null : isoTime(row.nextAttemptAt),
    createdAt: isoTime(row.createdAt),
    attempts: (attempts.get(row.id) ?? []).map((a) => ({
      attempt: a.attempt,
      statusCode: a.statusCode,
      error: a.error,
      durationMs: a.durationMs,
      at: isoTime(a.createdAt),
    })),
  }));
}

/** A page of the deliveries that `where` picks, newest first, with their attempts. */
export async function deliveryPage(db: Db, where: SQL, page: { limit: number; cursor?: string }) {
  const conditions = [where];
  if (page.cursor) conditions.push(lt(webhookDeliveries.id, decodeCursor(page.cursor)));
  const rows = await db
    .select()
    .from(webhookDeliveries)
    .where(and(...conditions))
    .orderBy(desc(webhookDeliveries.id))
    .limit(page.limit + 1);
  const shown = rows.slice(0, page.limit);
  return {
    deliveries: await deliveryViews(db, shown),
    nextCursor: rows.length > page.limit ? encodeCursor(shown[shown.length - 1].id) : null,
  };
}

/**
 * Inserts the endpoint unless its tenant already has MAX_WEBHOOK_ENDPOINTS: one statement, so that
 * concurrent registrations cannot pass the cap together. True when it was inserted.
 */
async function insertEndpoint(db: Db, row: typeof webhookEndpoints.$inferSelect) {
  const count = db.$count(webhookEndpoints, eq(webhookEndpoints.tenantId, row.tenantId));
  const inserted = await db
    .insert(webhookEndpoints)
    .select((qb) =>
      qb
        .select({
          id: sql`${row.id}`.as("id"),
          tenantId: tenants.id,
          url: sql`${row.url}`.as("url"),
          secret: sql`${row.secret}`.as("secret"),
          events: sql`${param(row.events, webhookEndpoints.events)}`.as("events"),
          createdAt: sql`${row.createdAt}`.as("created_at"),
        })
        .from(tenants)
        .where(and(eq(tenants.id, row.tenantId), lt(count, MAX_WEBHOOK_ENDPOINTS))),
    )
    .returning({ id: webhookEndpoints.id });
  return inserted.length === 1;
}

async function findEndpoint(db: Db, tenantId: string, id: string) {
  const [row] = await db
    .select()
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.tenantId, tenantId)));
  if (!row) throw new HttpProblem(404, "webhook-not-found", `No webhook endpoint ${id}.`);
  return row;
}

export const webhookRoutes = newRouter();
webhookRoutes.use("*", requireKey("api"));

webhookRoutes.openapi(create, async (c) => {
  const tenantId = tenantOf(c.get("principal"));
  const { url, events } = c.req.valid("json");
  checkWebhookTarget(url, configOf(c.env).allowLoopbackWebhooks);
  const now = Date.now();
  const id = newId("whk", now);
  const secret = newSigningSecret();
  const row = {
    id,
    tenantId,
    url,
    secret: await sealSecret(c.env, secret, id),
    events: [...new Set(events)],
    createdAt: now,
  };
  if (!(await insertEndpoint(database(c.env), row))) {
    throw new HttpProblem(
      422,
      "too-many-webhooks",
      `The tenant has ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints, the most it may have; delete one first.`,
    );
  }
  return c.json({ ...endpointView(row), secret }, 201);
});

webhookRoutes.openapi(list, async (c) => {
  const rows = await database(c.env)
    .select()
    .from(webhookEndpoints)
    .where(eq(webhookEndpoints.tenantId, tenantOf(c.get("principal"))))
    .orderBy(asc(webhookEndpoints.id));
  return c.json({ webhooks: rows.map(endpointView) }, 200);
});

webhookRoutes.openapi(remove, async (c) => {
  const db = database(c.env);
  const endpoint = await findEndpoint(db, tenantOf(c.get("principal")), c.req.valid("param").id);
  await db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, endpoint.id));
  return c.body(null, 204);
});

webhookRoutes.openapi(deliveries, async (c) => {
  const db = database(c.env);
  const endpoint = await findEndpoint(db, tenantOf(c.get("principal")), c.req.valid("param").id);
  const where = eq(webhookDeliveries.endpointId, endpoint.id);
  return c.json(await deliveryPage(db, where, c.req.valid("query")), 200);
});

webhookRoutes.openapi(redeliverRoute, async (c) => {
  const db = database(c.env);
  const { id } = c.req.valid("param");
  const [delivery] = await db
    .select()
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.id, id),
        eq(webhookDeliveries.tenantId, tenantOf(c.get("principal"))),
      ),
    );
  if (!delivery) throw new HttpProblem(404, "delivery-not-found", `No webhook delivery ${id}.`);
  const [view] = await deliveryViews(db, [await redeliver(c.env, db, delivery)]);
  return c.json(view, 202);
});
