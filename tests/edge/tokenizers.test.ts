import { env } from "cloudflare:workers";
import { bucketKeys, sha256Hex } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { registerTokenizer, tinyTokenizer } from "./fixtures/tokenizer.ts";
import { ADMIN_KEY, call, expectProblem, json, newTenant } from "./helpers.ts";

type Registration = {
  tokenizer: { id: string; status: string; manifestHash: string };
  fileProblems: { path: string; problem: string }[];
};

describe("registering a tokenizer", () => {
  it("validates the manifest, waits for its files, then is ready", async () => {
    const tiny = await tinyTokenizer("register-flow");
    const res = await call("/v1/admin/tokenizers", { ...json(tiny.manifest), key: ADMIN_KEY });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Registration;
    expect(body.tokenizer).toMatchObject({ status: "pending", manifestHash: tiny.hash });
    expect(body.fileProblems.map((f) => f.problem)).toEqual(["missing", "missing"]);
    const id = body.tokenizer.id;

    const stored = await env.BUCKET.get(bucketKeys.tokenizerManifest(tiny.hash));
    expect(await sha256Hex(await (stored as R2ObjectBody).text())).toBe(tiny.hash);

    const [first, second] = [...tiny.files];
    const put = (path: string, bytes: Uint8Array) =>
      call(`/v1/admin/tokenizers/${id}/files/${path}`, {
        method: "PUT",
        body: bytes,
        key: ADMIN_KEY,
      });
    const afterFirst = (await (await put(...first)).json()) as Registration;
    expect(afterFirst.tokenizer.status).toBe("pending");
    const afterSecond = (await (await put(...second)).json()) as Registration;
    expect(afterSecond).toMatchObject({ tokenizer: { status: "ready" }, fileProblems: [] });

    const again = await call("/v1/admin/tokenizers", { ...json(tiny.manifest), key: ADMIN_KEY });
    expect(again.status).toBe(200);
    expect(((await again.json()) as Registration).tokenizer.id).toBe(id);
  });

  it("refuses an invalid manifest with every problem named", async () => {
    const tiny = await tinyTokenizer();
    const broken = { ...tiny.manifest, quantizer: { ...tiny.manifest.quantizer, tokens: 3 } };
    const problem = await expectProblem(
      await call("/v1/admin/tokenizers", { ...json(broken), key: ADMIN_KEY }),
      422,
      "manifest.invalid",
    );
    expect(problem.detail).toContain("quantizer");
  });

  it("refuses a file of the wrong size or content, and keeps nothing of it", async () => {
    const tiny = await tinyTokenizer("bad-files");
    const res = await call("/v1/admin/tokenizers", { ...json(tiny.manifest), key: ADMIN_KEY });
    const { tokenizer } = (await res.json()) as Registration;
    const [path, bytes] = [...tiny.files][0];
    const put = (body: Uint8Array) =>
      call(`/v1/admin/tokenizers/${tokenizer.id}/files/${path}`, {
        method: "PUT",
        body,
        key: ADMIN_KEY,
      });
    await expectProblem(await put(bytes.subarray(1)), 422, "file-size-mismatch");
    const corrupted = bytes.slice();
    corrupted[corrupted.length - 1] ^= 1;
    await expectProblem(await put(corrupted), 422, "file-hash-mismatch");
    expect(await env.BUCKET.head(bucketKeys.tokenizerFile(tiny.hash, path))).toBeNull();
    await expectProblem(
      await call(`/v1/admin/tokenizers/${tokenizer.id}/files/not-there.bin`, {
        method: "PUT",
        body: bytes,
        key: ADMIN_KEY,
      }),
      404,
      "file-not-in-manifest",
    );
  });

  it("is admin-only", async () => {
    const tiny = await tinyTokenizer();
    const { apiKey } = await newTenant();
    await expectProblem(
      await call("/v1/admin/tokenizers", { ...json(tiny.manifest), key: apiKey }),
      401,
      "invalid-key",
    );
  });
});

describe("using tokenizers", () => {
  it("lists, describes and serves a ready public tokenizer to any tenant", async () => {
    const tiny = await tinyTokenizer("served");
    const id = await registerTokenizer(tiny);
    const { apiKey } = await newTenant();

    const list = (await (await call("/v1/tokenizers", { key: apiKey })).json()) as {
      tokenizers: { id: string }[];
    };
    expect(list.tokenizers.map((t) => t.id)).toContain(id);

    for (const ref of [id, tiny.hash]) {
      const one = await call(`/v1/tokenizers/${ref}`, { key: apiKey });
      expect(await one.json()).toMatchObject({
        id,
        status: "ready",
        owner: "public",
        manifest: tiny.manifest,
      });
    }

    const manifest = await call(`/v1/tokenizers/${id}/manifest.json`, { key: apiKey });
    expect(await sha256Hex(await manifest.text())).toBe(tiny.hash);

    const [path, bytes] = [...tiny.files][1];
    const file = await call(`/v1/tokenizers/${id}/files/${path}`, { key: apiKey });
    expect(file.status).toBe(200);
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(bytes);
    const etag = file.headers.get("etag") ?? "";
    expect(etag).toBe(`"${await sha256Hex(bytes)}"`);
    expect(file.headers.get("cache-control")).toContain("immutable");

    const part = await call(`/v1/tokenizers/${id}/files/${path}`, {
      key: apiKey,
      headers: { range: "bytes=8-15" },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 8-15/${bytes.length}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(8, 16));
    const notModified = await call(`/v1/tokenizers/${id}/files/${path}`, {
      key: apiKey,
      headers: { "if-none-match": etag },
    });
    expect(notModified.status).toBe(304);
    await expectProblem(
      await call(`/v1/tokenizers/${id}/files/${path}`, {
        key: apiKey,
        headers: { range: `bytes=${bytes.length}-` },
      }),
      416,
      "range-not-satisfiable",
    );
  });

  it("answers 404 for unknown tokenizers and files, and refuses worker keys", async () => {
    const tiny = await tinyTokenizer("missing-things");
    const id = await registerTokenizer(tiny);
    const { apiKey, workerKey } = await newTenant();
    await expectProblem(
      await call("/v1/tokenizers/tok_nope", { key: apiKey }),
      404,
      "tokenizer-not-found",
    );
    await expectProblem(
      await call(`/v1/tokenizers/${id}/files/nope.bin`, { key: apiKey }),
      404,
      "file-not-in-manifest",
    );
    await expectProblem(await call("/v1/tokenizers", { key: workerKey }), 403, "wrong-key-kind");
  });
});

describe("tenant-owned tokenizers", () => {
  it("are seen by their tenant only", async () => {
    const tiny = await tinyTokenizer("owned");
    const owner = await newTenant();
    const other = await newTenant();
    const id = `tok_${"0".repeat(10)}${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    await env.DB.prepare(
      "INSERT INTO tokenizers (id, owner, manifest_hash, name, manifest, status, created_at) VALUES (?, ?, ?, ?, ?, 'ready', ?)",
    )
      .bind(id, owner.id, tiny.hash, "owned", JSON.stringify(tiny.manifest), Date.now())
      .run();
    expect((await call(`/v1/tokenizers/${id}`, { key: owner.apiKey })).status).toBe(200);
    await expectProblem(
      await call(`/v1/tokenizers/${id}`, { key: other.apiKey }),
      404,
      "tokenizer-not-found",
    );
    const listed = (await (await call("/v1/tokenizers", { key: other.apiKey })).json()) as {
      tokenizers: { id: string }[];
    };
    expect(listed.tokenizers.map((t) => t.id)).not.toContain(id);
  });
});
