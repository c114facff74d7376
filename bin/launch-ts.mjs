// The bins' launcher. revq's programs are TypeScript, which Node runs as is from 22.18 on; an
// older Node (a system one, say, found first on PATH) fails on the .ts with
// ERR_UNKNOWN_FILE_EXTENSION. So the bins are plain JavaScript that call this: it runs the
// program here when this Node can, else under the repository's own Node 22 (npm install brings
// it), else says in one line what to run.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Runs `entry` (a .ts file URL) as the program `name`, with this process's arguments. */
export async function launch(name, entry) {
  if (process.features.typescript) {
    await import(entry.href);
    return;
  }
  const node = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url));
  if (!existsSync(node)) {
    process.stderr.write(
      `${name}: this Node (${process.version}) cannot run TypeScript; run npm install in the revq repository, then npx ${name} (or use Node 22.18 or newer)\n`,
    );
    process.exit(2);
  }
  const child = spawn(node, [fileURLToPath(entry), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  // Ctrl-C and SIGTERM reach the child (same process group, or passed on); its exit says how it ended.
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  child.on("exit", (code, signal) =>
    process.exit(code ?? (signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 1)),
  );
}
