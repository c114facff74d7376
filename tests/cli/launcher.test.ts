/**
 * The bins (revq, revq-worker, revq-train) under a Node that cannot run TypeScript (issue 14,
 * item 9): they run the program under the repository's Node 22 instead, or, with none there, say
 * in one line what to run (bin/launch-ts.mjs). The
 * project's Node without type stripping stands in for an older one; /usr/bin/node is tried too
 * where it is one.
 */
import { execFile, execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./support/run-cli.ts";

const BIN = join(ROOT, "node_modules", ".bin", "revq");
const SYSTEM_NODE = "/usr/bin/node";
const dir = mkdtempSync(join(tmpdir(), "revq-cli-launcher-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Run = { code: number; stdout: string; stderr: string };
const runWith = (node: string, args: string[]) =>
  new Promise<Run>((resolve) => {
    execFile(node, args, { cwd: dir }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
    });
  });

/** Whether `node` is there and runs .ts as is. */
function runsTypeScript(node: string): boolean | undefined {
  try {
    return (
      execFileSync(node, ["-p", "Boolean(process.features.typescript)"]).toString().trim() ===
      "true"
    );
  } catch {
    return undefined;
  }
}

const OLD_NODE = [process.execPath, "--no-experimental-strip-types"];

describe("the bins under a Node without TypeScript", () => {
  it("runs the CLI under the repository's Node, exit codes included", async () => {
    const version = await runWith(OLD_NODE[0], [...OLD_NODE.slice(1), BIN, "--version"]);
    expect(version).toMatchObject({ code: 0, stdout: "revq 0.1.0\n" });
    const bare = await runWith(OLD_NODE[0], [...OLD_NODE.slice(1), BIN]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^usage: revq/);
  });

  it("runs revq-worker and revq-train the same way", async () => {
    const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
    const worker = await runWith(OLD_NODE[0], [...OLD_NODE.slice(1), bin("revq-worker"), "--help"]);
    expect(worker.code, worker.stderr).toBe(0);
    expect(worker.stdout).toMatch(/^revq-worker: pulls encode and reconstruct tasks/);
    const train = await runWith(OLD_NODE[0], [...OLD_NODE.slice(1), bin("revq-train"), "--help"]);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout).toMatch(/^usage: revq-train /);
  });

  it.skipIf(runsTypeScript(SYSTEM_NODE) !== false)("runs under an older system Node", async () => {
    expect(await runWith(SYSTEM_NODE, [BIN, "--version"])).toMatchObject({
      code: 0,
      stdout: "revq 0.1.0\n",
    });
  });

  it("says in one line what to run when the repository has no Node of its own", async () => {
    // The bin alone, outside any checkout: no node_modules/.bin/node beside it.
    cpSync(join(ROOT, "cli", "bin"), join(dir, "cli", "bin"), { recursive: true });
    cpSync(join(ROOT, "bin"), join(dir, "bin"), { recursive: true });
    const r = await runWith(OLD_NODE[0], [
      ...OLD_NODE.slice(1),
      join(dir, "cli", "bin", "revq.mjs"),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^revq: this Node \(v[\d.]+\) cannot run TypeScript; run npm install in the revq repository, then npx revq \(or use Node 22\.18 or newer\)\n$/,
    );
  });
});
