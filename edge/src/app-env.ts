import type { Env } from "./env.ts";

/** Who is calling, established by the auth middleware. */
export type Principal =
  | { kind: "admin" }
  | { kind: "api" | "worker"; tenantId: string; keyId: string };

/** The Hono environment of every route: the Worker's bindings and the per-request principal. */
export type AppEnv = {
  Bindings: Env;
  Variables: { principal: Principal };
};
