/**
 * Runs the edge under `wrangler dev` for benchmarks: a fresh persisted state in a temporary
 * folder, migrations applied, a random admin key, offline (no metrics, no cf fetch). The server
 * is its own process group, stopped as a whole.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LOCAL_S3_VARS } from "../../scripts/start/edge.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
const OFFLINE = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

export type DevServer = {
  url: string;
  adminKey: string;
  logFile: string;
  /** wrangler's process id, which is also its process group's: workerd runs in that group. */
  pid: number;
  /** wrangler's DevTools inspector port, which reaches the Worker's isolate. */
  inspectorPort: number;
  stop(): void;
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(),
      );
    });
  });
}

export async function startEdge(vars: Record<string, string> = {}): Promise<DevServer> {
  const dir = mkdtempSync(join(tmpdir(), "revq-edge-"));
  execFileSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", dir], {
    cwd: ROOT,
    env: OFFLINE,
    stdio: "ignore",
  });
  const port = await freePort();
  const inspectorPort = await freePort();
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const logFile = join(dir, "wrangler.log");
  const log = openSync(logFile, "w");
  // As npm start's edge: it can sign workers' object URLs.
  const varArgs = Object.entries({ ADMIN_KEY: adminKey, ...LOCAL_S3_VARS, ...vars }).flatMap(
    ([k, v]) => ["--var", `${k}:${v}`],
  );
  const child = spawn(
    WRANGLER,
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      dir,
      ...varArgs,
    ],
    { cwd: ROOT, env: OFFLINE, detached: true, stdio: ["ignore", log, log] },
  );
  const stop = () => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGTERM");
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok)
        return { url, adminKey, logFile, pid: child.pid as number, inspectorPort, stop };
    } catch {}
    if (Date.now() > deadline || child.exitCode !== null) {
      stop();
      throw new Error(`wrangler dev did not come up; see ${logFile}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
