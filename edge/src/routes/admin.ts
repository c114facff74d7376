/** The admin API: tenants and their keys. Behind the ADMIN_KEY secret. */
import { createRoute, z } from "@hono/zod-openapi";
import { Timestamp } from "@revq/shared";
import { and, eq } from "drizzle-orm";
import { database } from "../db/client.ts";
import { apiKeys, tenants } from "../db/schema.ts";
import { requireAdmin } from "../middleware/auth.ts";
import { HttpProblem } from "../problem.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, isoTime, json, problems } from "../schemas/common.ts";
import { at, ids } from "../schemas/examples.ts";
import { mintKey } from "../services/api-keys.ts";
import { newId } from "../services/ids.ts";
import { adminTokenizerRoutes } from "./admin-tokenizers.ts";

const Name = z.string().trim().min(1).max(200);

const TenantCreate = z.object({ name: Name }).openapi("TenantCreate");
const Tenant = z
  .object({ id: z.string(), name: z.string(), createdAt: Timestamp })
  .openapi("Tenant");

const KeyCreate = z
  .object({
    kind: z.enum(["api", "worker"]).openapi({
      description: "`api` keys use the client API; `worker` keys only the worker API.",
    }),
    name: Name.default("default"),
  })
  .openapi("KeyCreate");

const KeyInfo = z.object({
  id: z.string(),
  tenantId: z.string(),
  kind: z.enum(["api", "worker"]),
  name: z.string(),
  prefix: z.string().openapi({ description: "The key's first characters, to tell keys apart." }),
  createdAt: Timestamp,
  revokedAt: Timestamp.nullable(),
});
const KeyCreated = KeyInfo.extend({
  key: z.string().openapi({ description: "The key itself. Shown only in this answer." }),
}).openapi("KeyCreated");

const TenantParams = z.object({
  tenantId: z.string().openapi({ param: { name: "tenantId", in: "path" }, example: ids.tenant }),
});
const KeyParams = TenantParams.extend({
  keyId: z.string().openapi({ param: { name: "keyId", in: "path" }, example: ids.key }),
});

const tenantExample = { id: ids.tenant, name: "acme", createdAt: at("09:00:00") };
const keyExample = {
  id: ids.key,
  tenantId: ids.tenant,
  kind: "api" as const,
  name: "ci",
  prefix: "rvq_api_H2rz",
  createdAt: at("09:01:00"),
  revokedAt: null,
};
const security = bearerSecurity("adminKey");

const createTenant = createRoute({
  method: "post",
  path: "/tenants",
  operationId: "createTenant",
  tags: ["Admin"],
  summary: "Create a tenant",
  security,
  request: { body: { content: json(TenantCreate, { name: "acme" }), required: true } },
  responses: {
    201: { description: "Created", content: json(Tenant, tenantExample) },
    ...problems(400, 401),
  },
});

const createKey = createRoute({
  method: "post",
  path: "/tenants/{tenantId}/keys",
  operationId: "createKey",
  tags: ["Admin"],
  summary: "Create an api or worker key for a tenant (the key is shown once)",
  security,
  request: {
    params: TenantParams,
    body: { content: json(KeyCreate, { kind: "api", name: "ci" }), required: true },
  },
  responses: {
    201: {
      description: "Created",
      content: json(KeyCreated, {
        ...keyExample,
        key: "rvq_api_H2rz9sNXZLda4da-K6fwCzxNFjtx7ugpZYgc8bGVtF4",
      }),
    },
    ...problems(400, 401, 404),
  },
});

const listKeys = createRoute({
  method: "get",
  path: "/tenants/{tenantId}/keys",
  operationId: "listKeys",
  tags: ["Admin"],
  summary: "List a tenant's keys (without the secrets)",
  security,
  request: { params: TenantParams },
  responses: {
    200: {
      description: "The keys",
      content: json(z.object({ keys: z.array(KeyInfo) }), { keys: [keyExample] }),
    },
    ...problems(401, 404),
  },
});

const revokeKey = createRoute({
  method: "delete",
  path: "/tenants/{tenantId}/keys/{keyId}",
  operationId: "revokeKey",
  tags: ["Admin"],
  summary: "Revoke a key; it stops working at once",
  security,
  request: { params: KeyParams },
  responses: { 204: { description: "Revoked" }, ...problems(401, 404) },
});

type KeyRow = typeof apiKeys.$inferSelect;

function keyInfo(row: KeyRow) {
  return {
    id: row.id,
    tenantId: row.tenantId,
    kind: row.kind,
    name: row.name,
    prefix: row.prefix,
    createdAt: isoTime(row.createdAt),
    revokedAt: row.revokedAt === null ? null : isoTime(row.revokedAt),
  };
}

async function requireTenant(db: ReturnType<typeof database>, tenantId: string) {
  const [tenant] = await db.select().from(tenants).where(eq(tenants.id, tenantId)).limit(1);
  if (!tenant) throw new HttpProblem(404, "tenant-not-found", `No tenant ${tenantId}.`);
  return tenant;
}

export const adminRoutes = newRouter();
adminRoutes.use("*", requireAdmin);
// Behind the requireAdmin above, like every route of this router.
adminRoutes.route("/tokenizers", adminTokenizerRoutes);

adminRoutes.openapi(createTenant, async (c) => {
  const { name } = c.req.valid("json");
  const now = Date.now();
  const row = { id: newId("ten", now), name, createdAt: now };
  await database(c.env).insert(tenants).values(row);
  return c.json({ ...row, createdAt: isoTime(now) }, 201);
});

adminRoutes.openapi(createKey, async (c) => {
  const { tenantId } = c.req.valid("param");
  const { kind, name } = c.req.valid("json");
  const db = database(c.env);
  await requireTenant(db, tenantId);
  const minted = await mintKey(kind);
  const now = Date.now();
  const row: KeyRow = {
    id: newId("key", now),
    tenantId,
    kind,
    name,
    hash: minted.hash,
    prefix: minted.prefix,
    createdAt: now,
    revokedAt: null,
  };
  await db.insert(apiKeys).values(row);
  return c.json({ ...keyInfo(row), key: minted.key }, 201);
});

adminRoutes.openapi(listKeys, async (c) => {
  const { tenantId } = c.req.valid("param");
  const db = database(c.env);
  await requireTenant(db, tenantId);
  const rows = await db
    .select()
    .from(apiKeys)
    .where(eq(apiKeys.tenantId, tenantId))
    .orderBy(apiKeys.id);
  return c.json({ keys: rows.map(keyInfo) }, 200);
});

adminRoutes.openapi(revokeKey, async (c) => {
  const { tenantId, keyId } = c.req.valid("param");
  const revoked = await database(c.env)
    .update(apiKeys)
    .set({ revokedAt: Date.now() })
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId)))
    .returning({ id: apiKeys.id });
  if (revoked.length === 0) {
    throw new HttpProblem(404, "key-not-found", `Tenant ${tenantId} has no key ${keyId}.`);
  }
  return c.body(null, 204);
});
