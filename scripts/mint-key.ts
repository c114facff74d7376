/**
 * Mints an api or worker key through the edge's admin API, locally or in production.
 *
 *   node scripts/mint-key.ts --url http://127.0.0.1:8787 --new-tenant acme --kind api
 *   node scripts/mint-key.ts --url https://edge.example.com --tenant ten_... --kind worker --name gpu-1
 *
 * The admin key comes from REVQ_ADMIN_KEY or, for a loopback URL, from ADMIN_KEY in .dev.vars
 * (written by `npm run edge:dev`). Prints the new key as JSON on stdout; it is not shown again.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8787" },
    tenant: { type: "string" },
    "new-tenant": { type: "string" },
    kind: { type: "string", default: "api" },
    name: { type: "string", default: "default" },
  },
});

function fail(message: string): never {
  console.error(`mint-key: ${message}`);
  process.exit(1);
}

function adminKey(url: URL): string {
  if (process.env.REVQ_ADMIN_KEY) return process.env.REVQ_ADMIN_KEY;
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    fail("set REVQ_ADMIN_KEY to the deployment's ADMIN_KEY secret");
  }
  const devVars = new URL("../.dev.vars", import.meta.url);
  let text: string;
  try {
    text = readFileSync(devVars, "utf8");
  } catch {
    fail("no REVQ_ADMIN_KEY and no .dev.vars (run `npm run edge:dev` once to create it)");
  }
  const match = text.match(/^ADMIN_KEY=(.+)$/m) ?? fail(".dev.vars has no ADMIN_KEY line");
  return match[1].trim();
}

async function post(
  base: URL,
  path: string,
  key: string,
  body: unknown,
): Promise<Record<string, string>> {
  const res = await fetch(new URL(path, base), {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as Record<string, string>;
  if (!res.ok) fail(`${path}: ${res.status} ${answer.detail ?? JSON.stringify(answer)}`);
  return answer;
}

if (values.kind !== "api" && values.kind !== "worker") fail("--kind must be api or worker");
if (!values.tenant === !values["new-tenant"]) fail("give exactly one of --tenant and --new-tenant");

const base = new URL(values.url);
const key = adminKey(base);
const tenantId =
  values.tenant ?? (await post(base, "/v1/admin/tenants", key, { name: values["new-tenant"] })).id;
const created = await post(base, `/v1/admin/tenants/${tenantId}/keys`, key, {
  kind: values.kind,
  name: values.name,
});
console.log(JSON.stringify({ tenantId, keyId: created.id, kind: created.kind, key: created.key }));
console.error("Keep the key now: the edge stores only its hash and cannot show it again.");
