/**
 * Idempotency-Key: the first request with a key runs and its successful answer is kept for a
 * day; a repeat with the same fingerprint gets that answer again (header `Idempotent-Replayed`),
 * one with a different fingerprint is refused (422), one that arrives while the first is still
 * running is told to retry (409). A failed request keeps nothing, so it may be retried with the
 * same key.
 */
import { and, eq, isNull, lt } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { database } from "../db/client.ts";
import { idempotencyKeys } from "../db/schema.ts";
import { HttpProblem } from "../problem.ts";

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** A request still "in progress" after this long died with its Worker; its key is free again. */
const ABANDONED_MS = 5 * 60 * 1000;

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/**
 * Runs `run` once per Idempotency-Key (if the request has one) and returns its answer body, or
 * the body remembered from the first run. The route answers with its one success status either
 * way; failures are thrown and remembered by nobody.
 */
export async function withIdempotency<T>(
  c: Context<AppEnv>,
  tenantId: string,
  fingerprint: string,
  run: () => Promise<T>,
): Promise<T> {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return run();
  if (!KEY_PATTERN.test(key)) {
    throw new HttpProblem(
      400,
      "invalid-idempotency-key",
      "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.",
    );
  }
  const db = database(c.env);
  const route = `${c.req.method} ${c.req.routePath}`;
  const where = and(
    eq(idempotencyKeys.tenantId, tenantId),
    eq(idempotencyKeys.route, route),
    eq(idempotencyKeys.key, key),
  );
  const now = Date.now();
  await db
    .delete(idempotencyKeys)
    .where(
      and(where, isNull(idempotencyKeys.body), lt(idempotencyKeys.createdAt, now - ABANDONED_MS)),
    );
  const claimed = await db
    .insert(idempotencyKeys)
    .values({ tenantId, route, key, fingerprint, createdAt: now })
    .onConflictDoNothing()
    .returning({ key: idempotencyKeys.key });

  if (claimed.length === 0) {
    const [earlier] = await db.select().from(idempotencyKeys).where(where).limit(1);
    if (!earlier) return withIdempotency(c, tenantId, fingerprint, run); // swept meanwhile
    if (earlier.fingerprint !== fingerprint) {
      throw new HttpProblem(
        422,
        "idempotency-key-reused",
        `Idempotency-Key ${JSON.stringify(key)} was already used for a different request to ${route}.`,
      );
    }
    if (earlier.body === null) {
      throw new HttpProblem(
        409,
        "idempotency-key-in-progress",
        `A request with Idempotency-Key ${JSON.stringify(key)} is still being processed; retry shortly.`,
        { headers: { "retry-after": "1" } },
      );
    }
    c.header("idempotent-replayed", "true");
    return JSON.parse(earlier.body) as T;
  }

  let result: T;
  try {
    result = await run();
  } catch (error) {
    await db.delete(idempotencyKeys).where(where);
    throw error;
  }
  await db
    .update(idempotencyKeys)
    .set({ body: JSON.stringify(result) })
    .where(where);
  return result;
}

/** Forgets answers older than the TTL; run by the cron sweep. */
export async function sweepIdempotencyKeys(
  env: AppEnv["Bindings"],
  now = Date.now(),
): Promise<number> {
  const gone = await database(env)
    .delete(idempotencyKeys)
    .where(lt(idempotencyKeys.createdAt, now - IDEMPOTENCY_TTL_MS))
    .returning({ key: idempotencyKeys.key });
  return gone.length;
}
