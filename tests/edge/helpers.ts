/** Calls into the edge Worker under test, and sets up tenants and keys through the admin API. */
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";

export const ADMIN_KEY = env.ADMIN_KEY as string;

export function call(path: string, init: RequestInit & { key?: string } = {}): Promise<Response> {
  const { key, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (key !== undefined) headers.set("authorization", `Bearer ${key}`);
  return exports.default.fetch(new Request(`http://edge${path}`, { ...rest, headers }));
}

export function json(body: unknown): RequestInit {
  return {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  };
}

export async function createTenant(name = "tenant"): Promise<string> {
  const res = await call("/v1/admin/tenants", { ...json({ name }), key: ADMIN_KEY });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

export async function createKey(tenantId: string, kind: "api" | "worker"): Promise<string> {
  const res = await call(`/v1/admin/tenants/${tenantId}/keys`, {
    ...json({ kind }),
    key: ADMIN_KEY,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { key: string }).key;
}

/** A new tenant with one api key and one worker key. */
export async function newTenant(name = "tenant") {
  const id = await createTenant(name);
  return { id, apiKey: await createKey(id, "api"), workerKey: await createKey(id, "worker") };
}

/** Asserts a problem+json answer and returns its body. */
export async function expectProblem(res: Response, status: number, code: string) {
  const body = (await res.json()) as { code: string; status: number; detail: string };
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect({ status: res.status, code: body.code }).toEqual({ status, code });
  expect(body.status).toBe(status);
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}
