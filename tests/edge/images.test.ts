import { env } from "cloudflare:workers";
import { sha256Hex } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { sweep } from "../../edge/src/services/sweep.ts";
import { IMAGES } from "./fixtures/images.ts";
import { pngClaiming } from "./fixtures/png.ts";
import { call, expectProblem, newTenant } from "./helpers.ts";

type Image = {
  id: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
};

function raw(bytes: Uint8Array, type: string, key: string, headers: Record<string, string> = {}) {
  return call("/v1/images", {
    method: "POST",
    body: bytes,
    headers: { "content-type": type, ...headers },
    key,
  });
}

function multipart(
  parts: { bytes: Uint8Array | string; type?: string; name?: string; field?: string }[],
  key: string,
  headers: Record<string, string> = {},
) {
  const form = new FormData();
  parts.forEach((p, i) => {
    const value =
      typeof p.bytes === "string"
        ? p.bytes
        : new File([p.bytes], p.name ?? `image-${i}`, { type: p.type ?? "" });
    form.append(p.field ?? "images", value);
  });
  return call("/v1/images", { method: "POST", body: form, headers, key });
}

async function uploaded(res: Response): Promise<Image[]> {
  expect(res.status).toBe(201);
  return ((await res.json()) as { images: Image[] }).images;
}

/** Nothing of the tenant's is in D1 or R2: what every refused upload must leave. */
async function expectNothingStored(tenantId: string) {
  const rows = await env.DB.prepare("SELECT count(*) AS n FROM images WHERE tenant_id = ?")
    .bind(tenantId)
    .first("n");
  expect(rows).toBe(0);
  const listed = await env.BUCKET.list({ prefix: `tenants/${tenantId}/` });
  expect(listed.objects).toEqual([]);
}

describe("POST /v1/images", () => {
  it("stores a raw PNG, and serves its metadata and bytes", async () => {
    const tenant = await newTenant();
    const [image] = await uploaded(await raw(IMAGES.png, "image/png", tenant.apiKey));
    expect(image).toMatchObject({ format: "png", width: 5, height: 3, bytes: IMAGES.png.length });
    expect(image.id).toMatch(/^img_/);

    const meta = await call(`/v1/images/${image.id}`, { key: tenant.apiKey });
    expect(await meta.json()).toEqual(image);

    const content = await call(`/v1/images/${image.id}/content`, { key: tenant.apiKey });
    expect(content.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await content.arrayBuffer())).toEqual(IMAGES.png);
    const etag = content.headers.get("etag") ?? "";
    expect(etag).toBe(`"${image.sha256}"`);
    const again = await call(`/v1/images/${image.id}/content`, {
      key: tenant.apiKey,
      headers: { "if-none-match": etag },
    });
    expect(again.status).toBe(304);
  });

  it.each([
    ["jpeg", IMAGES.jpeg, "image/jpeg"],
    ["jpeg", IMAGES.progressiveJpeg, "image/jpeg"],
    ["webp", IMAGES.webpLossy, "image/webp"],
    ["webp", IMAGES.webpLossless, "image/webp"],
    ["webp", IMAGES.webpExtended, "image/webp"],
  ])("reads the size of a %s from its header (%#)", async (format, bytes, type) => {
    const tenant = await newTenant();
    const [image] = await uploaded(await raw(bytes, type, tenant.apiKey));
    expect(image).toMatchObject({ format, width: 5, height: 3 });
  });

  it("stores several images from one multipart body, declared types optional", async () => {
    const tenant = await newTenant();
    const images = await uploaded(
      await multipart(
        [
          { bytes: IMAGES.png, type: "image/png" },
          { bytes: IMAGES.jpeg },
          { bytes: IMAGES.webpLossy, type: "application/octet-stream" },
        ],
        tenant.apiKey,
      ),
    );
    expect(images.map((i) => i.format)).toEqual(["png", "jpeg", "webp"]);
    const listed = await env.BUCKET.list({ prefix: `tenants/${tenant.id}/images/` });
    expect(listed.objects).toHaveLength(3);
  });

  describe("refuses bad uploads and stores nothing", () => {
    const cases: [string, (key: string) => Promise<Response>, number, string][] = [
      [
        "wrong magic",
        (k) => raw(new TextEncoder().encode("GIF89a...."), "image/png", k),
        415,
        "image.unknown-format",
      ],
      ["an empty body", (k) => raw(new Uint8Array(0), "image/png", k), 400, "image.empty"],
      [
        "a truncated PNG header",
        (k) => raw(IMAGES.png.subarray(0, 20), "image/png", k),
        400,
        "image.truncated",
      ],
      [
        "a PNG cut before IEND",
        (k) => raw(IMAGES.png.subarray(0, 60), "image/png", k),
        400,
        "image.truncated",
      ],
      [
        "a JPEG cut in its scan",
        (k) => raw(IMAGES.jpeg.subarray(0, 400), "image/jpeg", k),
        400,
        "image.truncated",
      ],
      [
        "a WebP cut short",
        (k) => raw(IMAGES.webpLossy.subarray(0, 50), "image/webp", k),
        400,
        "image.truncated",
      ],
      ["a 0×3 PNG", (k) => raw(pngClaiming(0, 3), "image/png", k), 400, "image.zero-size"],
      [
        "an oversized body",
        (k) => raw(pngClaiming(8, 8, 70_000), "image/png", k),
        413,
        "image.too-large",
      ],
      [
        "too many pixels",
        (k) => raw(pngClaiming(2000, 501), "image/png", k),
        422,
        "image.too-many-pixels",
      ],
      [
        "a declared type that lies",
        (k) => raw(IMAGES.jpeg, "image/png", k),
        415,
        "image.type-mismatch",
      ],
      [
        "an unaccepted content type",
        (k) => raw(IMAGES.png, "text/plain", k),
        415,
        "unsupported-media-type",
      ],
      ["an empty multipart body", (k) => multipart([], k), 400, "invalid-request"],
      [
        "a multipart body with no file",
        (k) => multipart([{ bytes: "hello" }], k),
        400,
        "invalid-request",
      ],
      [
        "a multipart body with an unexpected field",
        (k) => multipart([{ bytes: IMAGES.png }, { bytes: IMAGES.png, field: "other" }], k),
        400,
        "invalid-request",
      ],
      [
        "a multipart part that lies about its type",
        (k) => multipart([{ bytes: IMAGES.png, type: "image/webp" }], k),
        415,
        "image.type-mismatch",
      ],
      [
        "one bad part among good ones",
        (k) =>
          multipart(
            [{ bytes: IMAGES.png }, { bytes: IMAGES.jpeg }, { bytes: IMAGES.png.subarray(0, 40) }],
            k,
          ),
        400,
        "image.truncated",
      ],
      [
        "an oversized part",
        (k) => multipart([{ bytes: IMAGES.png }, { bytes: pngClaiming(8, 8, 70_000) }], k),
        413,
        "image.too-large",
      ],
      [
        "an oversized multipart body",
        (k) =>
          multipart(
            [0, 1, 2, 3, 4].map(() => ({ bytes: pngClaiming(8, 8, 60_000) })),
            k,
          ),
        413,
        "upload-too-large",
      ],
      [
        "too many images",
        (k) =>
          multipart(
            [0, 1, 2, 3, 4].map(() => ({ bytes: IMAGES.png })),
            k,
          ),
        413,
        "too-many-images",
      ],
    ];
    it.each(cases)("%s", async (_, send, status, code) => {
      const tenant = await newTenant();
      const problem = await expectProblem(await send(tenant.apiKey), status, code);
      expect(problem.detail).not.toMatch(/undefined|\[object/);
      await expectNothingStored(tenant.id);
    });
  });

  it("names the bad part of a multipart upload", async () => {
    const tenant = await newTenant();
    const res = await multipart(
      [{ bytes: IMAGES.png }, { bytes: IMAGES.png.subarray(0, 40), name: "cat.png" }],
      tenant.apiKey,
    );
    const problem = await expectProblem(res, 400, "image.truncated");
    expect(problem.detail).toContain('images[1] ("cat.png")');
  });
});

describe("Idempotency-Key on uploads", () => {
  it("the same key and body returns the first answer, stored once", async () => {
    const tenant = await newTenant();
    const headers = { "idempotency-key": "upload-1" };
    const first = await uploaded(await raw(IMAGES.png, "image/png", tenant.apiKey, headers));
    const repeat = await raw(IMAGES.png, "image/png", tenant.apiKey, headers);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");
    expect(await uploaded(repeat)).toEqual(first);
    // A multipart retry has a new boundary but the same files: still the same request.
    const viaForm = await multipart(
      [{ bytes: IMAGES.png, type: "image/png" }],
      tenant.apiKey,
      headers,
    );
    expect(await uploaded(viaForm)).toEqual(first);
    const count = await env.DB.prepare("SELECT count(*) AS n FROM images WHERE tenant_id = ?")
      .bind(tenant.id)
      .first("n");
    expect(count).toBe(1);
  });

  it("the same key with a different body is refused", async () => {
    const tenant = await newTenant();
    const headers = { "idempotency-key": "upload-2" };
    await uploaded(await raw(IMAGES.png, "image/png", tenant.apiKey, headers));
    await expectProblem(
      await raw(IMAGES.jpeg, "image/jpeg", tenant.apiKey, headers),
      422,
      "idempotency-key-reused",
    );
  });

  it("keys are per tenant", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const headers = { "idempotency-key": "shared-key" };
    const [fromA] = await uploaded(await raw(IMAGES.png, "image/png", a.apiKey, headers));
    const [fromB] = await uploaded(await raw(IMAGES.png, "image/png", b.apiKey, headers));
    expect(fromB.id).not.toBe(fromA.id);
  });

  it("refuses a malformed key", async () => {
    const tenant = await newTenant();
    await expectProblem(
      await raw(IMAGES.png, "image/png", tenant.apiKey, { "idempotency-key": "has space" }),
      400,
      "invalid-idempotency-key",
    );
  });
});

describe("image access across tenants", () => {
  it("another tenant's image is a 404, metadata and bytes", async () => {
    const owner = await newTenant();
    const other = await newTenant();
    const [image] = await uploaded(await raw(IMAGES.png, "image/png", owner.apiKey));
    await expectProblem(
      await call(`/v1/images/${image.id}`, { key: other.apiKey }),
      404,
      "image-not-found",
    );
    await expectProblem(
      await call(`/v1/images/${image.id}/content`, { key: other.apiKey }),
      404,
      "image-not-found",
    );
    await expectProblem(await call(`/v1/images/${image.id}`), 401, "missing-key");
    await expectProblem(
      await call(`/v1/images/${image.id}`, { key: owner.workerKey }),
      403,
      "wrong-key-kind",
    );
  });
});

describe("Idempotency-Key bookkeeping", () => {
  it("a request still in progress makes a repeat wait (409 with Retry-After)", async () => {
    const tenant = await newTenant();
    await env.DB.prepare(
      "INSERT INTO idempotency_keys (tenant_id, route, key, fingerprint, created_at) VALUES (?, ?, ?, ?, ?)",
    )
      .bind(
        tenant.id,
        "POST /v1/images",
        "busy",
        await sha256Hex(`png:${await sha256Hex(IMAGES.png)}`),
        Date.now(),
      )
      .run();
    const res = await raw(IMAGES.png, "image/png", tenant.apiKey, { "idempotency-key": "busy" });
    await expectProblem(res, 409, "idempotency-key-in-progress");
    expect(res.headers.get("retry-after")).toBe("1");
  });

  it("the cron sweep forgets answers after a day", async () => {
    const tenant = await newTenant();
    const headers = { "idempotency-key": "old" };
    const [first] = await uploaded(await raw(IMAGES.png, "image/png", tenant.apiKey, headers));
    const report = await sweep(env, Date.now() + 25 * 60 * 60 * 1000);
    expect(report.idempotencyKeysDropped).toBeGreaterThanOrEqual(1);
    const [second] = await uploaded(await raw(IMAGES.png, "image/png", tenant.apiKey, headers));
    expect(second.id).not.toBe(first.id);
  });
});
