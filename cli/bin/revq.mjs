#!/usr/bin/env node
// revq's bin. The CLI is TypeScript, which Node runs as is from 22.18 on; an older Node (a
// system one, say, found first on PATH) fails on the .ts with ERR_UNKNOWN_FILE_EXTENSION. So
// this file is plain JavaScript: it runs the CLI here when this Node can, else under the
// repository's own Node 22 (npm install brings it), else says in one line what to run.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../src/main.ts", import.meta.url);

if (process.features.typescript) {
  await import(main.href);
} else {
  const node = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url));
  if (!existsSync(node)) {
    process.stderr.write(
      `revq: this Node (${process.version}) cannot run TypeScript; run npm install in the revq repository, then npx revq (or use Node 22.18 or newer)\n`,
    );
    process.exit(2);
  }
  const child = spawn(node, [fileURLToPath(main), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  // Ctrl-C reaches the child too (same process group); its exit code says how it ended.
  process.on("SIGINT", () => undefined);
  child.on("exit", (code, signal) => process.exit(code ?? (signal === "SIGINT" ? 130 : 1)));
}
