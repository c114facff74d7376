/** A tenant as its own keys see it, and the default tokenizer its jobs use when they name none. */
import type { Tenant } from "@revq/shared";
import { eq } from "drizzle-orm";
import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import { isoTime } from "../schemas/common.ts";
import { defaultTokenizer, findTokenizer, readyTokenizer } from "./tokenizers.ts";

export async function tenantView(db: Db, config: Config, tenantId: string): Promise<Tenant> {
  const [row] = await db.select().from(tenants).where(eq(tenants.id, tenantId)).limit(1);
  const chosen = await defaultTokenizer(db, config, tenantId);
  // A default that no longer resolves (a deployment setting naming nothing) shows as none.
  const tokenizer = chosen
    ? await findTokenizer(db, tenantId, chosen.reference).catch(() => undefined)
    : undefined;
  return {
    id: row.id,
    name: row.name,
    defaultTokenizer:
      chosen && tokenizer
        ? {
            id: tokenizer.id,
            name: tokenizer.name,
            manifestHash: tokenizer.manifestHash,
            from: chosen.from,
          }
        : null,
    createdAt: isoTime(row.createdAt),
  };
}

/** Sets (a ready tokenizer the tenant may use, by id, hash or name) or clears the default. */
export async function setDefaultTokenizer(
  db: Db,
  tenantId: string,
  reference: string | null,
): Promise<void> {
  const id = reference === null ? null : (await readyTokenizer(db, tenantId, reference)).id;
  await db.update(tenants).set({ defaultTokenizerId: id }).where(eq(tenants.id, tenantId));
}
