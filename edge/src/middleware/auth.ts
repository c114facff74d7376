/**
 * Bearer authentication. Tenant keys are looked up by their SHA-256; the admin key is compared
 * in constant time with the ADMIN_KEY secret. Each router mounts exactly one of these for all of
 * its routes, so no route can be left open by accident. (The one exception, the token download,
 * checks its key in the same D1 query that reads the job: routes/tokens.ts.)
 */
import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { database } from "../db/client.ts";
import { apiKeys } from "../db/schema.ts";
import { HttpProblem } from "../problem.ts";
import { hashKey, type KeyKind, secretsEqual } from "../services/api-keys.ts";

const CHALLENGE = 'Bearer realm="revq"';

function bearerToken(header: string | undefined): string {
  const match = header?.match(/^Bearer +(\S+) *$/i);
  if (!match) {
    throw new HttpProblem(401, "missing-key", "Send a key as `Authorization: Bearer <key>`.", {
      headers: { "www-authenticate": CHALLENGE },
    });
  }
  return match[1];
}

function invalidKey(): HttpProblem {
  return new HttpProblem(401, "invalid-key", "The key is unknown or has been revoked.", {
    headers: { "www-authenticate": `${CHALLENGE}, error="invalid_token"` },
  });
}

/** The SHA-256 of the request's bearer key, by which tenant keys are looked up (401 if none). */
export function bearerKeyHash(header: string | undefined): Promise<string> {
  return hashKey(bearerToken(header));
}

/** A looked-up key row must exist (else 401) and be of the route's kind (else 403). */
export function checkKey<T extends { kind: KeyKind }>(row: T | undefined, kind: KeyKind): T {
  if (!row) throw invalidKey();
  if (row.kind !== kind) {
    const article = (k: KeyKind) => (k === "api" ? "an api" : "a worker");
    throw new HttpProblem(
      403,
      "wrong-key-kind",
      `This route needs ${article(kind)} key; the key sent is ${article(row.kind)} key.`,
    );
  }
  return row;
}

/** Routes for tenants' clients (`api`) or for their GPU workers (`worker`). */
export function requireKey(kind: KeyKind) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const hash = await bearerKeyHash(c.req.header("authorization"));
    const [row] = await database(c.env)
      .select({ id: apiKeys.id, tenantId: apiKeys.tenantId, kind: apiKeys.kind })
      .from(apiKeys)
      .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
      .limit(1);
    const key = checkKey(row, kind);
    c.set("principal", { kind, tenantId: key.tenantId, keyId: key.id });
    await next();
  });
}

export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const adminKey = c.env.ADMIN_KEY;
  if (!adminKey) {
    throw new HttpProblem(
      503,
      "admin-key-not-configured",
      "The admin API is off: the ADMIN_KEY secret is not set on this deployment.",
    );
  }
  const token = bearerToken(c.req.header("authorization"));
  if (!(await secretsEqual(token, adminKey))) throw invalidKey();
  c.set("principal", { kind: "admin" });
  await next();
});

/** The tenant of the request's key; only for routes behind requireKey. */
export function tenantOf(principal: AppEnv["Variables"]["principal"]): string {
  if (principal.kind === "admin") throw new Error("tenantOf called on an admin route");
  return principal.tenantId;
}
