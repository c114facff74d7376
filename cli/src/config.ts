/**
 * Where the edge is and which key to use: --url, else REVQ_URL and REVQ_API_KEY from the
 * environment, else from the nearest .revq/local.env (written by `npm start`) in the current
 * directory or above it. The key is never taken from a flag: flags show in `ps`.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CliError, EXIT } from "./errors.ts";

export type Connection = { url: string; apiKey: string; source: string };

const LOCAL_ENV = join(".revq", "local.env");

/** KEY=value lines; # comments and blank lines skipped; surrounding quotes removed. */
export function parseDotenv(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/);
    if (!match) continue;
    values[match[1]] = match[2].replace(/^(['"])(.*)\1$/, "$2");
  }
  return values;
}

export function findLocalEnv(from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, LOCAL_ENV);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

export function resolveConnection(
  env: Record<string, string | undefined>,
  cwd: string,
  urlFlag?: string,
): Connection {
  const file = env.REVQ_URL && env.REVQ_API_KEY ? undefined : findLocalEnv(cwd);
  const local = file ? parseDotenv(readFileSync(file, "utf8")) : {};
  const url = urlFlag ?? env.REVQ_URL ?? local.REVQ_URL;
  const apiKey = env.REVQ_API_KEY ?? local.REVQ_API_KEY;
  const hint =
    "run `npm start` in the revq repository (it writes .revq/local.env), or set REVQ_URL and REVQ_API_KEY for a deployed edge";
  if (!url) throw new CliError("no edge URL: --url or REVQ_URL is not set", EXIT.auth, { hint });
  if (!apiKey) throw new CliError("no API key: REVQ_API_KEY is not set", EXIT.auth, { hint });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`the edge URL ${JSON.stringify(url)} is not a URL`, EXIT.usage);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new CliError(`the edge URL must be http(s), not ${parsed.protocol}`, EXIT.usage);
  }
  const source =
    urlFlag !== undefined
      ? "--url"
      : env.REVQ_URL
        ? "the environment"
        : (file ?? "the environment");
  // Every path the CLI calls starts with /v1: a URL ending in it would call /v1/v1/... (404).
  if (/\/v1\/*$/.test(parsed.pathname)) {
    const named =
      urlFlag !== undefined ? "--url" : env.REVQ_URL ? "REVQ_URL" : `REVQ_URL in ${file}`;
    throw new CliError(
      `${named} should be the edge's base URL, without /v1: ${JSON.stringify(url)}`,
      EXIT.usage,
      { hint: `use ${url.replace(/\/v1\/*$/, "")}` },
    );
  }
  return { url: url.replace(/\/+$/, ""), apiKey, source };
}
