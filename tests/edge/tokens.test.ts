import { env } from "cloudflare:workers";
import {
  bucketKeys,
  readRecord,
  readTokenJson,
  readTokenNpy,
  readTokenStreamHeader,
  TOKEN_STREAM_MEDIA_TYPE,
} from "@revq/shared";
import { describe, expect, it } from "vitest";
import {
  createEncodeJob,
  lease,
  newWorld,
  type World,
  workerCall,
  writeTokensFor,
} from "./fixtures/jobs.ts";
import { call, expectProblem, newTenant } from "./helpers.ts";

/** An encode job of `images` images, finished by a worker; returns its id and the ids written. */
async function finishedJob(world: World, images: number) {
  const job = await createEncodeJob(world, images);
  const [task] = await lease(world.workerKey);
  const ids = await writeTokensFor(task, world.tiny);
  const done = await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
    leaseId: task.leaseId,
    result: { kind: "encode" },
  });
  expect(done.status).toBe(200);
  return { id: job.id, ids };
}

describe("GET /v1/jobs/{id}/tokens", () => {
  it("serves the token stream with a strong ETag, 304, immutable caching, and per-record Range", async () => {
    const world = await newWorld();
    const { id, ids } = await finishedJob(world, 3);
    const res = await call(`/v1/jobs/${id}/tokens`, { key: world.apiKey });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(TOKEN_STREAM_MEDIA_TYPE);
    expect(res.headers.get("cache-control")).toBe("private, max-age=31536000, immutable");
    expect(res.headers.get("revq-record-count")).toBe("3");
    expect(res.headers.get("revq-tokenizer")).toBe(world.tiny.hash);
    const etag = res.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[^"]+"$/);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const stored = await env.BUCKET.get(bucketKeys.jobTokens(world.id, id));
    expect(bytes).toEqual(new Uint8Array(await (stored as R2ObjectBody).arrayBuffer()));

    const notModified = await call(`/v1/jobs/${id}/tokens`, {
      key: world.apiKey,
      headers: { "if-none-match": etag },
    });
    expect(notModified.status).toBe(304);

    // Record 1 alone, located with the stride header, checks against its own index.
    const header = readTokenStreamHeader(bytes);
    const stride = Number(res.headers.get("revq-record-stride"));
    const start = 64 + stride;
    const part = await call(`/v1/jobs/${id}/tokens`, {
      key: world.apiKey,
      headers: { range: `bytes=${start}-${start + stride - 1}` },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(
      `bytes ${start}-${start + stride - 1}/${bytes.length}`,
    );
    expect(part.headers.get("etag")).toBe(etag);
    const record = readRecord(header, new Uint8Array(await part.arrayBuffer()), 1);
    expect(Array.from(record)).toEqual(Array.from(ids.subarray(4, 8)));
  });

  it("converts to JSON and .npy, each with its own ETag", async () => {
    const world = await newWorld();
    const { id, ids } = await finishedJob(world, 2);
    const asJson = await call(`/v1/jobs/${id}/tokens?format=json`, { key: world.apiKey });
    expect(asJson.headers.get("content-type")).toBe("application/json");
    const decoded = readTokenJson(await asJson.json());
    expect(decoded.tokens).toEqual(ids);
    expect(decoded.header.tokenizerHash).toBe(world.tiny.hash);

    const asNpy = await call(`/v1/jobs/${id}/tokens?format=npy`, { key: world.apiKey });
    const params = {
      tokenizerHash: world.tiny.hash,
      tokensPerRecord: 4,
      codesPerGroup: 4,
      groups: 4,
    };
    expect(readTokenNpy(new Uint8Array(await asNpy.arrayBuffer()), params).tokens).toEqual(ids);

    const etags = [asJson, asNpy].map((r) => r.headers.get("etag"));
    const binary = await call(`/v1/jobs/${id}/tokens`, { key: world.apiKey, method: "GET" });
    expect(new Set([...etags, binary.headers.get("etag")]).size).toBe(3);
  });

  it("answers from the Cache API once the stream has been served", async () => {
    const world = await newWorld();
    const { id } = await finishedJob(world, 1);
    const first = await call(`/v1/jobs/${id}/tokens?format=json`, { key: world.apiKey });
    const body = await first.text();
    // The cache is filled after the answer (waitUntil); give it a moment, then take the
    // object away: only the cache can still answer.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await env.BUCKET.delete(bucketKeys.jobTokens(world.id, id));
    const again = await call(`/v1/jobs/${id}/tokens?format=json`, { key: world.apiKey });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect(again.headers.get("cache-control")).toBe("private, max-age=31536000, immutable");
  });

  it("refuses unfinished, token-less, foreign and badly asked-for downloads", async () => {
    const world = await newWorld();
    const { id } = await finishedJob(world, 1);
    const queued = await createEncodeJob(world);
    await expectProblem(
      await call(`/v1/jobs/${queued.id}/tokens`, { key: world.apiKey }),
      409,
      "tokens-not-ready",
    );
    await expectProblem(
      await call(`/v1/jobs/${id}/tokens?format=csv`, { key: world.apiKey }),
      400,
      "invalid-request",
    );
    await expectProblem(
      await call(`/v1/jobs/${id}/tokens`, {
        key: world.apiKey,
        headers: { range: "bytes=99999-" },
      }),
      416,
      "range-not-satisfiable",
    );
    const stranger = await newTenant();
    await expectProblem(
      await call(`/v1/jobs/${id}/tokens`, { key: stranger.apiKey }),
      404,
      "job-not-found",
    );
    await expectProblem(await call(`/v1/jobs/${id}/tokens`), 401, "missing-key");
    await expectProblem(
      await call(`/v1/jobs/${id}/tokens`, { key: world.workerKey }),
      403,
      "wrong-key-kind",
    );
    await expectProblem(
      await call(`/v1/jobs/${id}/tokens`, { key: "rvq_api_unknown" }),
      401,
      "invalid-key",
    );
    await expectProblem(
      await call("/v1/jobs/job_nope/tokens", { key: world.apiKey }),
      404,
      "job-not-found",
    );
  });
});
