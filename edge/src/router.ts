import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./app-env.ts";
import { invalidRequest } from "./problem.ts";

/**
 * A router whose zod validation failures become 400 problems naming every invalid field. Every
 * route module builds its router here so that none can forget the hook.
 */
export function newRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw invalidRequest(result.target, result.error.issues);
    },
  });
}
