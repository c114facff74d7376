import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  ADMIN_KEY,
  call,
  createKey,
  createTenant,
  expectProblem,
  json,
  newTenant,
} from "./helpers.ts";

describe("admin API", () => {
  it("creates a tenant and keys; a key is shown once and stored only as its hash", async () => {
    const tenantId = await createTenant("acme");
    const res = await call(`/v1/admin/tenants/${tenantId}/keys`, {
      ...json({ kind: "api", name: "ci" }),
      key: ADMIN_KEY,
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Record<string, string>;
    expect(created).toMatchObject({ tenantId, kind: "api", name: "ci", revokedAt: null });
    expect(created.key).toMatch(/^rvq_api_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(created.prefix)).toBe(true);

    const stored = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?")
      .bind(created.id)
      .first<Record<string, string>>();
    expect(Object.values(stored ?? {})).not.toContain(created.key);

    const listed = await call(`/v1/admin/tenants/${tenantId}/keys`, { key: ADMIN_KEY });
    const { keys } = (await listed.json()) as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toHaveProperty("key");
  });

  it("refuses a missing, wrong or tenant admin key", async () => {
    await expectProblem(await call("/v1/admin/tenants", json({ name: "x" })), 401, "missing-key");
    await expectProblem(
      await call("/v1/admin/tenants", { ...json({ name: "x" }), key: "not-the-admin-key" }),
      401,
      "invalid-key",
    );
    const { apiKey } = await newTenant();
    await expectProblem(
      await call("/v1/admin/tenants", { ...json({ name: "x" }), key: apiKey }),
      401,
      "invalid-key",
    );
  });

  it("validates bodies and names the invalid field", async () => {
    const res = await call("/v1/admin/tenants", { ...json({ name: "" }), key: ADMIN_KEY });
    const body = (await expectProblem(res, 400, "invalid-request")) as { errors?: unknown };
    expect(body.errors).toEqual([{ path: "json.name", message: expect.any(String) }]);
    const tenantId = await createTenant();
    await expectProblem(
      await call(`/v1/admin/tenants/${tenantId}/keys`, {
        ...json({ kind: "root" }),
        key: ADMIN_KEY,
      }),
      400,
      "invalid-request",
    );
    await expectProblem(
      await call("/v1/admin/tenants", {
        method: "POST",
        body: "{not json",
        headers: { "content-type": "application/json" },
        key: ADMIN_KEY,
      }),
      400,
      "bad-request",
    );
  });

  it("answers 404 for keys of a tenant that does not exist", async () => {
    await expectProblem(
      await call("/v1/admin/tenants/ten_nope/keys", { ...json({ kind: "api" }), key: ADMIN_KEY }),
      404,
      "tenant-not-found",
    );
  });
});

describe("bearer keys", () => {
  it("an api key reaches its own tenant", async () => {
    const tenant = await newTenant("mine");
    const res = await call("/v1/tenant", { key: tenant.apiKey });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: tenant.id, name: "mine" });
  });

  it("refuses a missing key, a malformed header, and an unknown key", async () => {
    const missing = await call("/v1/tenant");
    await expectProblem(missing, 401, "missing-key");
    expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
    await expectProblem(
      await call("/v1/tenant", { headers: { authorization: "Basic dXNlcjpwYXNz" } }),
      401,
      "missing-key",
    );
    await expectProblem(
      await call("/v1/tenant", { key: "rvq_api_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
      401,
      "invalid-key",
    );
  });

  it("refuses a worker key on the client API", async () => {
    const { workerKey } = await newTenant();
    await expectProblem(await call("/v1/tenant", { key: workerKey }), 403, "wrong-key-kind");
  });

  it("a revoked key stops working at once", async () => {
    const tenantId = await createTenant();
    const res = await call(`/v1/admin/tenants/${tenantId}/keys`, {
      ...json({ kind: "api" }),
      key: ADMIN_KEY,
    });
    const { id, key } = (await res.json()) as { id: string; key: string };
    expect((await call("/v1/tenant", { key })).status).toBe(200);
    const revoked = await call(`/v1/admin/tenants/${tenantId}/keys/${id}`, {
      method: "DELETE",
      key: ADMIN_KEY,
    });
    expect(revoked.status).toBe(204);
    await expectProblem(await call("/v1/tenant", { key }), 401, "invalid-key");
    const other = await createTenant();
    await expectProblem(
      await call(`/v1/admin/tenants/${other}/keys/${id}`, { method: "DELETE", key: ADMIN_KEY }),
      404,
      "key-not-found",
    );
  });

  it("keys of two tenants are independent", async () => {
    const a = await createTenant("a");
    const b = await createTenant("b");
    const keyA = await createKey(a, "api");
    const keyB = await createKey(b, "api");
    expect(await (await call("/v1/tenant", { key: keyA })).json()).toMatchObject({ id: a });
    expect(await (await call("/v1/tenant", { key: keyB })).json()).toMatchObject({ id: b });
  });
});
