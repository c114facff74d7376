import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["tests/shared/**/*.test.ts", "tests/gpu-worker/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
