import { env } from "cloudflare:workers";
import { writeNpy } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { IMAGES } from "./fixtures/images.ts";
import {
  createEncodeJob,
  getJob,
  lease,
  newWorld,
  type World,
  workerCall,
  writeTokensFor,
} from "./fixtures/jobs.ts";
import { pngClaiming } from "./fixtures/png.ts";
import { call, expectProblem, json } from "./helpers.ts";

/** What a worker writes for the two records: two different PNGs. */
const PNGS = [IMAGES.png, pngClaiming(8, 8, 40)];

/**
 * A succeeded encode job of two images, and a reconstruct job of it (keeping its latents if
 * asked), leased but not finished.
 */
async function reconstructJob(world: World, latents = false) {
  const encode = await createEncodeJob(world, 2);
  const [encodeTask] = await lease(world.workerKey);
  await writeTokensFor(encodeTask, world.tiny);
  const encoded = await workerCall(world.workerKey, `/tasks/${encodeTask.taskId}/complete`, {
    leaseId: encodeTask.leaseId,
    result: { kind: "encode" },
  });
  expect(encoded.status).toBe(200);
  const res = await call("/v1/jobs", {
    ...json({
      kind: "reconstruct",
      tokenizer: world.tokenizerId,
      inputs: { job: encode.id },
      latents,
    }),
    key: world.apiKey,
  });
  expect(res.status).toBe(202);
  const job = (await res.json()) as { id: string };
  const [task] = await lease(world.workerKey);
  if (task.payload.kind !== "reconstruct") throw new Error("kind");
  const { images: output, latents: latentsKey } = task.payload.output;
  const complete = () =>
    workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "reconstruct" },
    });
  const finish = async () => {
    for (const [i, key] of output.entries()) await env.BUCKET.put(key, PNGS[i]);
    if (latentsKey) await env.BUCKET.put(latentsKey, LATENTS);
    expect((await complete()).status).toBe(200);
  };
  return { id: job.id, encodeId: encode.id, latentsKey, complete, finish };
}

/** What a worker writes as the two records' latents (the tiny tokenizer's 2×2×2). */
const LATENTS = writeNpy(
  Float32Array.from({ length: 16 }, (_, i) => i / 4),
  [2, 2, 2, 2],
);

const image = (world: World, id: string, index: number | string, headers: HeadersInit = {}) =>
  call(`/v1/jobs/${id}/images/${index}`, { key: world.apiKey, headers });

describe("GET /v1/jobs/{id}/images/{index}", () => {
  it("serves each output PNG with a strong ETag, 304, Range and immutable caching; the job lists their URLs", async () => {
    const world = await newWorld();
    const job = await reconstructJob(world);
    await job.finish();
    const view = await getJob(world, job.id);
    const listed = (view.result as { images: { index: number; bytes: number; url: string }[] })
      .images;
    expect(listed.map((i) => i.url)).toEqual([0, 1].map((i) => `/v1/jobs/${job.id}/images/${i}`));
    expect(listed.map((i) => i.bytes)).toEqual(PNGS.map((p) => p.length));

    const etags: string[] = [];
    for (const [i, png] of PNGS.entries()) {
      const res = await call(listed[i].url, { key: world.apiKey });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/png");
      expect(res.headers.get("cache-control")).toBe("private, max-age=31536000, immutable");
      expect(res.headers.get("content-length")).toBe(String(png.length));
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(png);
      const etag = res.headers.get("etag") ?? "";
      expect(etag).toMatch(/^"[^"]+"$/);
      etags.push(etag);
    }
    expect(etags[0]).not.toBe(etags[1]);

    const notModified = await image(world, job.id, 1, { "if-none-match": etags[1] });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get("etag")).toBe(etags[1]);
    const other = await image(world, job.id, 1, { "if-none-match": etags[0] });
    expect(other.status).toBe(200);
    await other.arrayBuffer();

    const signature = await image(world, job.id, 0, { range: "bytes=0-7" });
    expect(signature.status).toBe(206);
    expect(signature.headers.get("content-range")).toBe(`bytes 0-7/${PNGS[0].length}`);
    expect(new Uint8Array(await signature.arrayBuffer())).toEqual(PNGS[0].subarray(0, 8));
    await expectProblem(
      await image(world, job.id, 0, { range: `bytes=${PNGS[0].length}-` }),
      416,
      "range-not-satisfiable",
    );
  });

  it("is a 404 for another tenant, an index the job does not have, and a job without images", async () => {
    const world = await newWorld();
    const stranger = await newWorld();
    const job = await reconstructJob(world);
    await job.finish();
    await expectProblem(await image(stranger, job.id, 0), 404, "job-not-found");
    for (const index of [2, "-1", "01", "1.0", "x", "99999999999"]) {
      const problem = await expectProblem(
        await image(world, job.id, index),
        404,
        "image-not-found",
      );
      expect(problem.detail).toContain("images 0 to 1");
    }
    await expectProblem(await image(world, job.encodeId, 0), 404, "no-images");
    await expectProblem(await image(world, "job_nope", 0), 404, "job-not-found");
    await expectProblem(await call(`/v1/jobs/${job.id}/images/0`), 401, "missing-key");
  });

  it("is a 409 until the job has succeeded, and the job lists no URLs before", async () => {
    const world = await newWorld();
    const job = await reconstructJob(world);
    expect((await getJob(world, job.id)).result).toBeNull();
    const problem = await expectProblem(await image(world, job.id, 0), 409, "images-not-ready");
    expect(problem.detail).toContain("running");
  });
});

describe("GET /v1/jobs/{id}/latents", () => {
  it("serves a reconstruct job's latents when it was asked for them, and says why not otherwise", async () => {
    const world = await newWorld();
    const job = await reconstructJob(world, true);
    expect(job.latentsKey).toMatch(/\/latents\.npy$/);
    const latents = () => call(`/v1/jobs/${job.id}/latents`, { key: world.apiKey });
    await expectProblem(await latents(), 409, "latents-not-ready");
    // A worker that wrote neither the images nor the latents has not done the task.
    await expectProblem(await job.complete(), 422, "invalid-result");
    await job.finish();

    const view = await getJob(world, job.id);
    const kept = (view.result as { latents: { bytes: number; url: string } }).latents;
    expect(kept).toMatchObject({ bytes: LATENTS.length, url: `/v1/jobs/${job.id}/latents` });
    const res = await latents();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-npy");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(LATENTS);
    const partial = await call(kept.url, { key: world.apiKey, headers: { range: "bytes=0-9" } });
    expect(partial.status).toBe(206);
    expect(new Uint8Array(await partial.arrayBuffer())).toEqual(LATENTS.subarray(0, 10));

    const imagesOnly = await reconstructJob(world);
    await imagesOnly.finish();
    await expectProblem(
      await call(`/v1/jobs/${imagesOnly.id}/latents`, { key: world.apiKey }),
      404,
      "latents-not-kept",
    );
    await expectProblem(
      await call(`/v1/jobs/${job.encodeId}/latents`, { key: world.apiKey }),
      404,
      "no-latents",
    );
    const stranger = await newWorld();
    await expectProblem(
      await call(`/v1/jobs/${job.id}/latents`, { key: stranger.apiKey }),
      404,
      "job-not-found",
    );
  });
});
