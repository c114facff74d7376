import { defineConfig } from "drizzle-kit";

// Generates the D1 migrations in migrations/ from the edge schema; wrangler applies them.
export default defineConfig({
  dialect: "sqlite",
  schema: "./edge/src/db/schema.ts",
  out: "./migrations",
});
