/**
 * Per-tenant rate limits on the expensive route classes (edge/src/middleware/rate-limit.ts).
 * Every other test runs under wrangler.toml's limits, which none of them reaches. Here each test
 * swaps TEST_RATE_LIMIT (2 requests per 10 s, vitest.config.ts) in for the binding of the class
 * it exercises and calls the app with that env, so the class's own route meets a real miniflare
 * limiter that is quick to exhaust.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { TOKEN_STREAM_MEDIA_TYPE, writeTokenStream } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { app } from "../../edge/src/app.ts";
import type { Env } from "../../edge/src/env.ts";
import { createDataset, holdings, tar } from "./fixtures/datasets.ts";
import { IMAGES } from "./fixtures/images.ts";
import { newWorld, uploadImages, type World } from "./fixtures/jobs.ts";
import { createKey, expectProblem, json } from "./helpers.ts";

const LIMIT = 2;
const PERIOD_MS = 10_000;

type Binding =
  | "RATE_LIMIT_IMAGES"
  | "RATE_LIMIT_DATASET_UPLOADS"
  | "RATE_LIMIT_JOBS"
  | "RATE_LIMIT_DECODE";

/** A request to the app with the class's binding replaced by the small test limiter. */
async function limitedCall(binding: Binding, key: string, path: string, init: RequestInit) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${key}`);
  const limitedEnv: Env = { ...env, [binding]: env.TEST_RATE_LIMIT };
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`http://edge${path}`, { ...init, headers }),
    limitedEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * miniflare's windows are aligned to the clock (multiples of the period): a test that must stay
 * inside one window starts in a fresh one when the current one is nearly over.
 */
async function windowWithRoom(ms = 5_000) {
  const left = PERIOD_MS - (Date.now() % PERIOD_MS);
  if (left < ms) await sleep(left + 100);
}

async function untilNextWindow() {
  await sleep(PERIOD_MS - (Date.now() % PERIOD_MS) + 100);
}

const count = (sql: string, tenantId: string) =>
  env.DB.prepare(sql).bind(tenantId).first<number>("n");

type RouteClass = {
  name: string;
  counted: string;
  status: number;
  /** What the class's route needs before the first request (on unlimited routes). */
  prepare(world: World): Promise<unknown>;
  send(world: World, key: string, prepared: unknown, n: number): Promise<Response>;
  /** The tenant's rows and objects the route writes: a refused request leaves them as they are. */
  state(world: World): Promise<unknown>;
};

const CLASSES: RouteClass[] = [
  {
    name: "POST /v1/images",
    counted: "image uploads",
    status: 201,
    prepare: async () => undefined,
    send: (_world, key) =>
      limitedCall("RATE_LIMIT_IMAGES", key, "/v1/images", {
        method: "POST",
        body: IMAGES.png,
        headers: { "content-type": "image/png" },
      }),
    state: (world) => holdings(world.id),
  },
  {
    name: "POST /v1/datasets/{id}/images",
    counted: "dataset uploads",
    status: 201,
    prepare: async (world) => (await createDataset(world.apiKey)).id,
    send: async (_world, key, datasetId, n) =>
      limitedCall("RATE_LIMIT_DATASET_UPLOADS", key, `/v1/datasets/${datasetId}/images`, {
        method: "POST",
        body: await tar([[`photo-${n}.png`, IMAGES.png]]),
        headers: { "content-type": "application/x-tar" },
      }),
    state: (world) => holdings(world.id),
  },
  {
    name: "POST /v1/jobs",
    counted: "job creations",
    status: 202,
    prepare: (world) => uploadImages(world.apiKey, 1),
    send: (world, key, images) =>
      limitedCall(
        "RATE_LIMIT_JOBS",
        key,
        "/v1/jobs",
        json({ kind: "encode", tokenizer: world.tokenizerId, inputs: { images } }),
      ),
    state: async (world) => ({
      jobs: await count("SELECT count(*) AS n FROM jobs WHERE tenant_id = ?", world.id),
      tasks: await count("SELECT count(*) AS n FROM tasks WHERE tenant_id = ?", world.id),
      events: await count("SELECT count(*) AS n FROM job_events WHERE tenant_id = ?", world.id),
    }),
  },
  {
    name: "POST /v1/decode",
    counted: "decode requests",
    status: 200,
    prepare: async () => undefined,
    send: (world, key) =>
      limitedCall("RATE_LIMIT_DECODE", key, "/v1/decode", {
        method: "POST",
        body: writeTokenStream(
          { tokenizerHash: world.tiny.hash, tokensPerRecord: 4, codesPerGroup: 4, groups: 4 },
          Uint32Array.of(0, 1, 2, 3),
        ),
        headers: { "content-type": TOKEN_STREAM_MEDIA_TYPE },
      }),
    // Decode writes nothing; the refusal is all there is to see.
    state: async () => null,
  },
];

describe.each(CLASSES)("$name", (routeClass) => {
  it(`answers 429 with Retry-After past ${LIMIT} requests per window, and does nothing`, async () => {
    await windowWithRoom();
    const world = await newWorld();
    const prepared = await routeClass.prepare(world);
    for (let n = 0; n < LIMIT; n++) {
      const res = await routeClass.send(world, world.apiKey, prepared, n);
      expect(res.status).toBe(routeClass.status);
    }
    const before = await routeClass.state(world);
    const refused = await routeClass.send(world, world.apiKey, prepared, LIMIT);
    expect(refused.headers.get("retry-after")).toBe("60");
    const body = await expectProblem(refused, 429, "rate-limited");
    expect(body.detail).toContain(`too many ${routeClass.counted}`);
    expect(body.detail).toContain("Retry after 60 seconds");
    expect(await routeClass.state(world)).toEqual(before);
  });

  it("counts per tenant: another key of the tenant is refused, another tenant is not", async () => {
    await windowWithRoom();
    const [world, other] = [await newWorld(), await newWorld()];
    const [prepared, otherPrepared] = [
      await routeClass.prepare(world),
      await routeClass.prepare(other),
    ];
    for (let n = 0; n < LIMIT; n++) await routeClass.send(world, world.apiKey, prepared, n);
    const secondKey = await createKey(world.id, "api");
    await expectProblem(
      await routeClass.send(world, secondKey, prepared, LIMIT),
      429,
      "rate-limited",
    );
    const res = await routeClass.send(other, other.apiKey, otherPrepared, 0);
    expect(res.status).toBe(routeClass.status);
  });
});

describe("the window", () => {
  it("resets: a refused tenant is served again once its window has passed", async () => {
    const [images] = CLASSES;
    await windowWithRoom();
    const world = await newWorld();
    for (let n = 0; n < LIMIT; n++) await images.send(world, world.apiKey, undefined, n);
    await expectProblem(
      await images.send(world, world.apiKey, undefined, LIMIT),
      429,
      "rate-limited",
    );
    await untilNextWindow();
    const res = await images.send(world, world.apiKey, undefined, LIMIT + 1);
    expect(res.status).toBe(201);
  }, 30_000);

  it("is one per route class: job creation stays open when uploads are spent", async () => {
    const [images, , jobs] = CLASSES;
    await windowWithRoom();
    const world = await newWorld();
    const imageIds = await jobs.prepare(world);
    for (let n = 0; n < LIMIT; n++) await images.send(world, world.apiKey, undefined, n);
    await expectProblem(
      await images.send(world, world.apiKey, undefined, LIMIT),
      429,
      "rate-limited",
    );
    // The same env, in which the image uploads' limiter is spent.
    const res = await limitedCall(
      "RATE_LIMIT_IMAGES",
      world.apiKey,
      "/v1/jobs",
      json({ kind: "encode", tokenizer: world.tokenizerId, inputs: { images: imageIds } }),
    );
    expect(res.status).toBe(jobs.status);
  });
});
