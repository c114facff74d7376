/**
 * edge/src/env.ts is the one declaration of the Worker's bindings and variables. It is written by
 * hand because it says what each is for and which a deployment may leave out, which `wrangler
 * types` cannot; this test runs `wrangler types` on wrangler.toml and checks that the declaration
 * still covers everything the configuration gives the Worker, with the same types.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OFFLINE_ENV, ROOT } from "./support/edge.ts";

const dir = mkdtempSync(join(tmpdir(), "revq-env-types-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** name → type of each member line `NAME: Type;` (or `NAME?: Type;`), generics dropped. */
function members(source: string, indent: string): Map<string, string> {
  const line = new RegExp(`^${indent}([A-Z][A-Z0-9_]*)\\??: ([A-Za-z0-9]+)[^;]*;$`, "gm");
  return new Map([...source.matchAll(line)].map((m) => [m[1], m[2]]));
}

describe("the edge's Env", () => {
  it("declares every binding and variable of wrangler.toml, with wrangler's types", () => {
    const generated = join(dir, "worker-configuration.d.ts");
    execFileSync(
      join(ROOT, "node_modules/.bin/wrangler"),
      ["types", generated, "--include-runtime=false", "--strict-vars=false"],
      { cwd: ROOT, env: OFFLINE_ENV, stdio: "pipe" },
    );
    const fromConfig = members(readFileSync(generated, "utf8"), "\t");
    const declared = members(readFileSync(join(ROOT, "edge/src/env.ts"), "utf8"), "  ");
    expect(fromConfig.size).toBeGreaterThan(10);
    for (const [name, type] of fromConfig) expect(declared.get(name), name).toBe(type);
  });
});
