/**
 * The edge under `wrangler dev`, as the end-to-end tests need it: local D1 (migrated), R2 with
 * its S3 door, Queues and cron, state in a temporary folder, a random admin key and webhook key,
 * offline. The server runs in its own process group and is stopped as a whole; it can be stopped
 * and started again on the same port and state (the edge "going away for a while").
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LOCAL_S3_VARS } from "../../../scripts/start/edge.ts";
import type { S3Door } from "./s3-door.ts";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
export const OFFLINE_ENV = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

export class LocalEdge {
  readonly dir = mkdtempSync(join(tmpdir(), "revq-e2e-edge-"));
  readonly adminKey = `e2e-${randomBytes(16).toString("hex")}`;
  private readonly webhookKeys = `e2e:${randomBytes(32).toString("base64")}`;
  port = 0;
  private child: ChildProcess | undefined;
  private readonly vars: Record<string, string>;

  constructor(vars: Record<string, string> = {}) {
    this.vars = vars;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The operator's door to the bucket (s3-door.ts); workers get presigned URLs instead. */
  get s3(): S3Door {
    return {
      endpoint: `${this.url}${LOCAL_S3_VARS.S3_ENDPOINT}`,
      bucket: "revq",
      accessKeyId: LOCAL_S3_VARS.S3_ACCESS_KEY_ID,
      secretAccessKey: LOCAL_S3_VARS.S3_SECRET_ACCESS_KEY,
    };
  }

  get logFile(): string {
    return join(this.dir, "wrangler.log");
  }

  /** Applies the migrations (first time) and starts wrangler dev; resolves once it answers. */
  async start(): Promise<void> {
    if (this.port === 0) {
      execFileSync(
        WRANGLER,
        ["d1", "migrations", "apply", "DB", "--local", "--persist-to", this.dir],
        { cwd: ROOT, env: OFFLINE_ENV, stdio: "ignore" },
      );
      this.port = await freePort();
    }
    const log = openSync(this.logFile, "a");
    const vars = Object.entries({
      ADMIN_KEY: this.adminKey,
      WEBHOOK_KEYS: this.webhookKeys,
      // The edge signs the workers' object URLs with the operator's key.
      ...LOCAL_S3_VARS,
      ...this.vars,
    }).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
    const args = [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--persist-to",
      this.dir,
    ];
    const child = spawn(WRANGLER, [...args, ...vars], {
      cwd: ROOT,
      env: OFFLINE_ENV,
      detached: true,
      stdio: ["ignore", log, log],
    });
    this.child = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || child.exitCode !== null) {
        await this.stop();
        throw new Error(`wrangler dev did not come up:\n${readFileSync(this.logFile, "utf8")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Stops the server (its whole process group) and waits until the port refuses connections. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child?.pid || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A call to the edge's API with a key; throws with the problem's detail unless 2xx. */
  async api<T = Record<string, unknown>>(
    method: string,
    path: string,
    key: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const isBytes = body instanceof Uint8Array;
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined || isBytes ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : isBytes ? body : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** A new tenant with an api key and a worker key, minted through the admin API. */
  async tenant(name: string): Promise<{ tenantId: string; apiKey: string; workerKey: string }> {
    const tenant = await this.api<{ id: string }>("POST", "/v1/admin/tenants", this.adminKey, {
      name,
    });
    const mint = (kind: string) =>
      this.api<{ key: string }>("POST", `/v1/admin/tenants/${tenant.id}/keys`, this.adminKey, {
        kind,
        name: `${name}-${kind}`,
      });
    const [api, worker] = await Promise.all([mint("api"), mint("worker")]);
    return { tenantId: tenant.id, apiKey: api.key, workerKey: worker.key };
  }
}
