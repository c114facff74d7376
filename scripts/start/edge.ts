/**
 * The edge under `wrangler dev`: local D1 (migrated first), R2 with its S3 door, Queues and cron,
 * all persisted in the state directory, offline. The admin key and the webhook keys come from
 * .dev.vars, which wrangler reads from the repository root; it is created on first start.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "./options.ts";
import { type Exit, Group } from "./processes.ts";

const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const DEV_VARS = join(ROOT, ".dev.vars");

/** wrangler makes no outside connection with these (docs: ENVIRONMENT, "Cloudflare stack"). */
export const OFFLINE_ENV = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  // Plain text in the log files, which npm start shows when something fails.
  NO_COLOR: "1",
  FORCE_COLOR: "0",
};

/**
 * What a local edge signs workers' object URLs with: wrangler dev's S3 door, on the edge's own
 * origin, and wrangler.toml's local_dev.experimental_s3_credentials (valid only against it).
 * npm start, the end-to-end tests and the benchmarks all run their edge with these.
 */
export const LOCAL_S3_VARS = {
  S3_ENDPOINT: "/cdn-cgi/local/r2/s3",
  S3_ACCESS_KEY_ID: "revq-local",
  S3_SECRET_ACCESS_KEY: "revq-local-secret",
};

/**
 * The lines .dev.vars must hold, each made when missing (a file from an older version gets the
 * newer ones): WEBHOOK_KEYS, one random key (docs/deploy.md, "Secrets"); the S3 door the edge
 * signs workers' object URLs for, on its own origin.
 */
const REQUIRED_VARS: [name: string, value: () => string][] = [
  ["WEBHOOK_KEYS", () => `dev:${randomBytes(32).toString("base64")}`],
  ...Object.entries(LOCAL_S3_VARS).map(
    ([name, value]) => [name, () => value] as [string, () => string],
  ),
];

/** The admin key of .dev.vars, writing the file first if there is none. */
export function ensureDevVars(): { adminKey: string; created: boolean } {
  let created = false;
  if (!existsSync(DEV_VARS)) {
    const key = `rvq_admin_${randomBytes(32).toString("base64url")}`;
    // Loopback webhook targets are refused in production; locally they are the point.
    writeFileSync(DEV_VARS, `ADMIN_KEY=${key}\nALLOW_LOOPBACK_WEBHOOKS=true\n`, {
      mode: 0o600,
      flag: "wx",
    });
    created = true;
  }
  const text = readFileSync(DEV_VARS, "utf8");
  const missing = REQUIRED_VARS.filter(([name]) => !new RegExp(`^${name}=`, "m").test(text));
  if (missing.length > 0) {
    const lines = missing.map(([name, value]) => `${name}=${value()}\n`).join("");
    appendFileSync(DEV_VARS, `${text === "" || text.endsWith("\n") ? "" : "\n"}${lines}`);
  }
  const match = text.match(/^ADMIN_KEY=(.+)$/m);
  if (!match) {
    throw new Error(
      `${DEV_VARS} has no ADMIN_KEY line: add one (ADMIN_KEY=<a long random secret>) or delete the file to have one made`,
    );
  }
  return { adminKey: match[1].trim(), created };
}

/** Resolves when something already listens on the port (we could not bind it). */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(true));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(false)));
  });
}

export async function applyMigrations(persistDir: string, logFile: string): Promise<void> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      WRANGLER,
      ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir],
      { cwd: ROOT, env: { ...OFFLINE_ENV, CI: "true" } },
    );
    writeFileSync(logFile, `${stdout}${stderr}`);
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`applying the D1 migrations failed:\n${stdout}${stderr}`);
  }
}

/** `vars` are set for this run only (wrangler dev --var), over wrangler.toml and .dev.vars. */
export function startWrangler(
  port: number,
  persistDir: string,
  logFile: string,
  vars: Record<string, string> = {},
): Group {
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistDir];
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  return new Group("edge", WRANGLER, args, { cwd: ROOT, env: OFFLINE_ENV, logFile });
}

/** wrangler dev does not run cron triggers by itself; this is wrangler.toml's one trigger. */
export const CRON = "* * * * *";

/** Runs the scheduled handler every minute, as Cloudflare would (lease expiry, sweeps). */
export function tickCron(url: string): NodeJS.Timeout {
  const timer = setInterval(() => {
    fetch(`${url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(CRON)}`, {
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined); // the edge being down shows elsewhere
  }, 60_000);
  timer.unref();
  return timer;
}

/** Polls GET /healthz (which reaches D1) until it answers 200, or the process ends. */
export async function waitHealthy(url: string, group: Group, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let exit: Exit | undefined;
  void group.exited.then((e) => {
    exit = e;
  });
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) })).ok) return;
    } catch {
      // not listening yet
    }
    // wrangler keeps running after a failed build (it waits for the next edit): say so now.
    if (group.tail(200).includes("Build failed")) {
      throw new Error(`wrangler dev could not build the edge:\n${group.tail()}`);
    }
    if (exit) {
      throw new Error(`wrangler dev exited (${exit.code ?? exit.signal}):\n${group.tail()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `wrangler dev did not answer ${url}/healthz in ${ms / 1000} s:\n${group.tail()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
