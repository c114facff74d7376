/**
 * The D1 schema. migrations/ is generated from this file by drizzle-kit (`npm run db:generate`);
 * never edit the SQL by hand. Times are integer milliseconds since the epoch (UTC).
 */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

const createdAt = () => integer("created_at").notNull().default(sql`(unixepoch('subsec') * 1000)`);

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: createdAt(),
});

/** Only the SHA-256 of a key is stored; the key itself is shown once, when it is created. */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    kind: text("kind", { enum: ["api", "worker"] }).notNull(),
    name: text("name").notNull(),
    /** Lowercase hex SHA-256 of the whole key. */
    hash: text("hash").notNull().unique(),
    /** The key's first characters, so that a person can tell keys apart in a listing. */
    prefix: text("prefix").notNull(),
    createdAt: createdAt(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [index("api_keys_tenant").on(t.tenantId)],
);
