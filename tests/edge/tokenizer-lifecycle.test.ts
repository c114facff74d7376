import {
  readNpy,
  type Tenant,
  TOKEN_STREAM_MEDIA_TYPE,
  type Tokenizer,
  writeTokenStream,
} from "@revq/shared";
import { describe, expect, it } from "vitest";
import { newWorld, uploadImages, type World } from "./fixtures/jobs.ts";
import { randomTokenizer, registerOwnTokenizer, SMALL_SHAPE } from "./fixtures/tokenizer.ts";
import { call, expectProblem, json } from "./helpers.ts";

const rename = (world: World, id: string, body: unknown) =>
  call(`/v1/tokenizers/${id}`, { ...json(body), method: "PATCH", key: world.apiKey });
const remove = (world: World, id: string) =>
  call(`/v1/tokenizers/${id}`, { method: "DELETE", key: world.apiKey });

async function encode(world: World, tokenizer: string) {
  const images = await uploadImages(world.apiKey, 1);
  return call("/v1/jobs", {
    ...json({ kind: "encode", tokenizer, inputs: { images } }),
    key: world.apiKey,
  });
}

describe("a tenant's own tokenizer", () => {
  it("is renamed, under a name no other of the tenant's has", async () => {
    const world = await newWorld();
    const a = await registerOwnTokenizer(
      world.id,
      await randomTokenizer("life-a", SMALL_SHAPE, 11),
    );
    await registerOwnTokenizer(world.id, await randomTokenizer("life-b", SMALL_SHAPE, 12));
    const renamed = await rename(world, a.id, { name: "photos-512" });
    expect(renamed.status).toBe(200);
    expect(((await renamed.json()) as Tokenizer).name).toBe("photos-512");
    const byName = await call("/v1/tokenizers/photos-512", { key: world.apiKey });
    expect(((await byName.json()) as Tokenizer).id).toBe(a.id);
    await expectProblem(await rename(world, a.id, { name: "life-b" }), 409, "tokenizer-name-taken");
    await expectProblem(await rename(world, a.id, { name: "" }), 400, "invalid-request");
    await expectProblem(await rename(world, a.id, { name: "a/b" }), 400, "invalid-request");
    await expectProblem(await rename(world, a.id, { label: "x" }), 400, "invalid-request");
    // A public tokenizer is not the tenant's to rename; another tenant's is not there at all.
    await expectProblem(
      await rename(world, world.tokenizerId, { name: "x" }),
      403,
      "tokenizer-not-owned",
    );
    const stranger = await newWorld();
    await expectProblem(await rename(stranger, a.id, { name: "x" }), 404, "tokenizer-not-found");
  });

  it("is deleted: no new job, no default, not listed, but its tokens still decode", async () => {
    const world = await newWorld();
    const own = await randomTokenizer("life-deleted", SMALL_SHAPE, 13);
    const row = await registerOwnTokenizer(world.id, own);
    await call("/v1/tenant/default-tokenizer", {
      ...json({ tokenizer: row.id }),
      method: "PUT",
      key: world.apiKey,
    });
    expect((await encode(world, row.id)).status).toBe(202);

    expect((await remove(world, row.id)).status).toBe(204);
    await expectProblem(await encode(world, row.id), 422, "tokenizer-not-found");
    await expectProblem(
      await call(`/v1/tokenizers/${row.id}`, { key: world.apiKey }),
      404,
      "tokenizer-not-found",
    );
    const list = await call("/v1/tokenizers?status=all", { key: world.apiKey });
    const listed = ((await list.json()) as { tokenizers: Tokenizer[] }).tokenizers;
    expect(listed.map((t) => t.id)).not.toContain(row.id);
    const tenant = (await (await call("/v1/tenant", { key: world.apiKey })).json()) as Tenant;
    expect(tenant.defaultTokenizer?.from).toBe("deployment");

    // Tokens made with it (they carry its hash) still decode to latents.
    const params = { tokenizerHash: own.hash, tokensPerRecord: 4, codesPerGroup: 4, groups: 4 };
    const decoded = await call("/v1/decode", {
      method: "POST",
      body: writeTokenStream(params, Uint32Array.from([0, 1, 2, 3])),
      headers: { "content-type": TOKEN_STREAM_MEDIA_TYPE },
      key: world.apiKey,
    });
    expect(decoded.status).toBe(200);
    expect(readNpy(new Uint8Array(await decoded.arrayBuffer())).shape).toEqual([1, 2, 2, 2]);

    await expectProblem(await remove(world, row.id), 404, "tokenizer-not-found");
    await expectProblem(await remove(world, world.tokenizerId), 403, "tokenizer-not-owned");
    // Registered again (the same manifest), it is back.
    expect((await registerOwnTokenizer(world.id, own)).id).toBe(row.id);
    expect((await encode(world, row.id)).status).toBe(202);
  });
});
