import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const entry = fileURLToPath(new URL("../../shared/src/index.ts", import.meta.url));

// DESIGN.md: shared/ runs in a Worker, in Node and in a browser, so it may import nothing but
// itself and zod. A browser-platform build fails on any Node built-in, and the metafile shows
// every other module that got in.
describe("shared/ bundled for a browser", () => {
  it("builds for the browser from its own sources and zod alone", async () => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: "browser",
      format: "esm",
      target: "es2022",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    const foreign = inputs.filter(
      (path) => !path.startsWith("shared/src/") && !path.startsWith("node_modules/zod/"),
    );
    expect(foreign).toEqual([]);
    expect(inputs.some((path) => path.startsWith("shared/src/quant/"))).toBe(true);

    const code = result.outputFiles[0].text;
    for (const forbidden of [/\bfrom\s*["']node:/, /\brequire\(/, /\bprocess\./, /\bBuffer\./]) {
      expect(code).not.toMatch(forbidden);
    }
  });

  it("fails the build when a Node built-in sneaks in", async () => {
    const attempt = build({
      stdin: { contents: 'import { readFileSync } from "node:fs"; export const f = readFileSync;' },
      bundle: true,
      platform: "browser",
      write: false,
      logLevel: "silent",
    });
    await expect(attempt).rejects.toThrow(/node:fs/);
  });
});
