/**
 * The local tenant and its two keys. Keys are shown once by the edge, so they are kept in
 * <state>/seed.json (mode 600) and reused by every later start, as long as the edge still knows
 * them (a deleted database or a revoked key makes a new seed).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Admin, AdminError } from "./admin.ts";

export type Seed = {
  tenantId: string;
  apiKeyId: string;
  apiKey: string;
  workerKeyId: string;
  workerKey: string;
};

type KeyInfo = { id: string; revokedAt: string | null };

const TENANT_NAME = "local";

function seedPath(stateDir: string): string {
  return join(stateDir, "seed.json");
}

function readSeed(stateDir: string): Seed | undefined {
  try {
    return JSON.parse(readFileSync(seedPath(stateDir), "utf8")) as Seed;
  } catch {
    return undefined;
  }
}

/** Whether the edge still has the tenant and both keys, unrevoked. */
async function stillValid(admin: Admin, seed: Seed): Promise<boolean> {
  try {
    const { keys } = await admin.call<{ keys: KeyInfo[] }>(
      "GET",
      `/v1/admin/tenants/${seed.tenantId}/keys`,
    );
    const live = new Set(keys.filter((k) => k.revokedAt === null).map((k) => k.id));
    return live.has(seed.apiKeyId) && live.has(seed.workerKeyId);
  } catch (error) {
    if (error instanceof AdminError && error.status === 404) return false;
    throw error;
  }
}

async function createSeed(admin: Admin): Promise<Seed> {
  const tenant = await admin.call<{ id: string }>("POST", "/v1/admin/tenants", {
    name: TENANT_NAME,
  });
  const mint = (kind: "api" | "worker") =>
    admin.call<{ id: string; key: string }>("POST", `/v1/admin/tenants/${tenant.id}/keys`, {
      kind,
      name: `local-${kind}`,
    });
  const api = await mint("api");
  const worker = await mint("worker");
  return {
    tenantId: tenant.id,
    apiKeyId: api.id,
    apiKey: api.key,
    workerKeyId: worker.id,
    workerKey: worker.key,
  };
}

/** The seed of an earlier start if the edge still honours it, else a new one. */
export async function ensureSeed(
  admin: Admin,
  stateDir: string,
): Promise<{ seed: Seed; created: boolean }> {
  const earlier = readSeed(stateDir);
  if (earlier && (await stillValid(admin, earlier))) return { seed: earlier, created: false };
  const seed = await createSeed(admin);
  writeFileSync(seedPath(stateDir), `${JSON.stringify(seed, null, 2)}\n`, { mode: 0o600 });
  return { seed, created: true };
}

/** REVQ_URL and REVQ_API_KEY for scripts and the revq CLI, as a dotenv file. */
export function writeLocalEnv(stateDir: string, url: string, seed: Seed): string {
  const path = join(stateDir, "local.env");
  writeFileSync(path, `REVQ_URL=${url}\nREVQ_API_KEY=${seed.apiKey}\n`, { mode: 0o600 });
  return path;
}
