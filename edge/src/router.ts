import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./app-env.ts";
import { HttpProblem } from "./problem.ts";

/**
 * A router whose zod validation failures become 400 problems naming every invalid field. Every
 * route module builds its router here so that none can forget the hook.
 */
export function newRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const errors = result.error.issues.map((issue) => ({
        path: [result.target, ...issue.path.map(String)].join("."),
        message: issue.message,
      }));
      const detail = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
      throw new HttpProblem(400, "invalid-request", `Invalid request: ${detail}`, { errors });
    },
  });
}
