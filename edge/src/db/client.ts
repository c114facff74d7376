import { drizzle } from "drizzle-orm/d1";
import type { Env } from "../env.ts";
import * as schema from "./schema.ts";

export type Db = ReturnType<typeof database>;

/** The typed view of D1. Cheap: it wraps the binding, no connection is opened. */
export function database(env: Env) {
  return drizzle(env.DB, { schema });
}
