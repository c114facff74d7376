import type { Tenant } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { type Job, newWorld, uploadImages, type World } from "./fixtures/jobs.ts";
import {
  randomTokenizer,
  registerOwnTokenizer,
  registerTokenizer,
  SMALL_SHAPE as SHAPE,
} from "./fixtures/tokenizer.ts";
import { call, expectProblem, json } from "./helpers.ts";

const tenantOf = async (world: World) =>
  (await (await call("/v1/tenant", { key: world.apiKey })).json()) as Tenant;

const setDefault = (world: World, body: unknown) =>
  call("/v1/tenant/default-tokenizer", { ...json(body), method: "PUT", key: world.apiKey });

async function encodeJob(world: World, tokenizer?: string): Promise<Job> {
  const images = await uploadImages(world.apiKey, 1);
  const res = await call("/v1/jobs", {
    ...json({ kind: "encode", ...(tokenizer ? { tokenizer } : {}), inputs: { images } }),
    key: world.apiKey,
  });
  expect(res.status).toBe(202);
  return (await res.json()) as Job;
}

describe("a tenant's default tokenizer", () => {
  it("is the deployment's until the tenant chooses one, and serves jobs that name none", async () => {
    const world = await newWorld();
    // The edge tests' deployment default is the tiny tokenizer (vitest.config.ts).
    expect((await tenantOf(world)).defaultTokenizer).toMatchObject({
      manifestHash: world.tiny.hash,
      from: "deployment",
    });
    expect((await encodeJob(world)).tokenizer?.manifestHash).toBe(world.tiny.hash);

    const own = await registerOwnTokenizer(
      world.id,
      await randomTokenizer("default-own", SHAPE, 3),
    );
    const set = await setDefault(world, { tokenizer: "default-own" });
    expect(set.status).toBe(200);
    expect(((await set.json()) as Tenant).defaultTokenizer).toEqual({
      id: own.id,
      name: "default-own",
      manifestHash: own.manifestHash,
      from: "tenant",
    });
    expect((await encodeJob(world)).tokenizer?.id).toBe(own.id);
    // A job that names one still gets the one it names.
    expect((await encodeJob(world, world.tokenizerId)).tokenizer?.id).toBe(world.tokenizerId);
    const images = await uploadImages(world.apiKey, 2);
    const train = await call("/v1/jobs", {
      ...json({ kind: "train", inputs: { images } }),
      key: world.apiKey,
    });
    expect(((await train.json()) as Job).baseTokenizer?.id).toBe(own.id);

    const cleared = await call("/v1/tenant/default-tokenizer", {
      method: "DELETE",
      key: world.apiKey,
    });
    expect(((await cleared.json()) as Tenant).defaultTokenizer?.from).toBe("deployment");
    expect((await encodeJob(world)).tokenizer?.manifestHash).toBe(world.tiny.hash);
  });

  it("must be a ready tokenizer the tenant may use, and is one tenant's only", async () => {
    const world = await newWorld();
    const other = await newWorld();
    await registerOwnTokenizer(other.id, await randomTokenizer("default-others", SHAPE, 4));
    await expectProblem(
      await setDefault(world, { tokenizer: "default-others" }),
      422,
      "tokenizer-not-found",
    );
    await expectProblem(await setDefault(world, { tokenizer: "" }), 400, "invalid-request");
    await expectProblem(await setDefault(world, { name: "x" }), 400, "invalid-request");
    expect((await tenantOf(world)).defaultTokenizer?.from).toBe("deployment");
    expect((await tenantOf(other)).defaultTokenizer?.from).toBe("deployment");
  });
});

describe("a tokenizer's name", () => {
  it("is accepted wherever an id or hash is, the tenant's own before a public one", async () => {
    const world = await newWorld();
    const publicOne = await randomTokenizer("named-twice", SHAPE, 5);
    await registerTokenizer(publicOne);
    const shown = await call("/v1/tokenizers/named-twice", { key: world.apiKey });
    expect(((await shown.json()) as { manifestHash: string }).manifestHash).toBe(publicOne.hash);
    const own = await registerOwnTokenizer(
      world.id,
      await randomTokenizer("named-twice", SHAPE, 6),
    );
    expect((await encodeJob(world, "named-twice")).tokenizer?.id).toBe(own.id);
    const stranger = await newWorld();
    expect((await encodeJob(stranger, "named-twice")).tokenizer?.manifestHash).toBe(publicOne.hash);
  });
});
