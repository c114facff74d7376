/** What a client key can learn about its own tenant, and the tenant's default tokenizer. */
import { createRoute } from "@hono/zod-openapi";
import { DefaultTokenizerSet, Tenant } from "@revq/shared";
import { configOf } from "../config.ts";
import { database } from "../db/client.ts";
import { requireKey, tenantOf } from "../middleware/auth.ts";
import { newRouter } from "../router.ts";
import { bearerSecurity, json, problems } from "../schemas/common.ts";
import { at, ids, tokenizer } from "../schemas/examples.ts";
import { setDefaultTokenizer, tenantView } from "../services/tenant.ts";

const security = bearerSecurity("apiKey");
const tenantAnswer = (description: string, from: "tenant" | "deployment") => ({
  description,
  content: json(Tenant, {
    id: ids.tenant,
    name: "acme",
    defaultTokenizer: {
      id: tokenizer.id,
      name: tokenizer.name,
      manifestHash: tokenizer.manifestHash,
      from,
    },
    createdAt: at("09:00:00"),
  }),
});

const route = createRoute({
  method: "get",
  path: "/",
  operationId: "getTenant",
  tags: ["Tenant"],
  summary: "The tenant the key belongs to",
  security,
  responses: { 200: tenantAnswer("The tenant", "deployment"), ...problems(401, 403) },
});

const setDefault = createRoute({
  method: "put",
  path: "/default-tokenizer",
  operationId: "setDefaultTokenizer",
  tags: ["Tenant"],
  summary: "Choose the tokenizer the tenant's jobs use when they name none",
  description:
    "Encode and reconstruct jobs without `tokenizer`, and train jobs without `baseTokenizer`, use it instead of the deployment's DEFAULT_TOKENIZER. It must be ready and visible to the tenant (422 tokenizer-not-found, 409 tokenizer-not-ready).",
  security,
  request: {
    body: {
      required: true,
      content: json(DefaultTokenizerSet, { tokenizer: tokenizer.name }),
    },
  },
  responses: {
    200: tenantAnswer("The tenant, with its default", "tenant"),
    ...problems(400, 401, 403, 409, 422),
  },
});

const clearDefault = createRoute({
  method: "delete",
  path: "/default-tokenizer",
  operationId: "clearDefaultTokenizer",
  tags: ["Tenant"],
  summary: "Go back to the deployment's default tokenizer",
  security,
  responses: {
    200: tenantAnswer("The tenant, with the deployment's default", "deployment"),
    ...problems(401, 403),
  },
});

export const tenantRoutes = newRouter();
tenantRoutes.use("*", requireKey("api"));
tenantRoutes.openapi(route, async (c) =>
  c.json(await tenantView(database(c.env), configOf(c.env), tenantOf(c.get("principal"))), 200),
);
tenantRoutes.openapi(setDefault, async (c) => {
  const db = database(c.env);
  const tenantId = tenantOf(c.get("principal"));
  await setDefaultTokenizer(db, tenantId, c.req.valid("json").tokenizer);
  return c.json(await tenantView(db, configOf(c.env), tenantId), 200);
});
tenantRoutes.openapi(clearDefault, async (c) => {
  const db = database(c.env);
  const tenantId = tenantOf(c.get("principal"));
  await setDefaultTokenizer(db, tenantId, null);
  return c.json(await tenantView(db, configOf(c.env), tenantId), 200);
});
