import { drizzle } from "drizzle-orm/d1";
import type { Env } from "../env.ts";
import * as schema from "./schema.ts";

export type Db = ReturnType<typeof database>;

/** The typed view of D1. Cheap: it wraps the binding, no connection is opened. */
export function database(env: Env) {
  return drizzle(env.DB, { schema });
}

/** D1 binds at most this many parameters to one statement. */
export const D1_MAX_PARAMS = 100;

/** `items` cut into runs of at most `size`, e.g. the rows of one multi-row INSERT. */
export function chunked<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
