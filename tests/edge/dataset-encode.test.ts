import { env } from "cloudflare:workers";
import {
  bucketKeys,
  type LeasedTask,
  type RecordIndex,
  readTokenJson,
  readTokenNpy,
  readTokenStream,
  recordStride,
  type TokenShardManifest,
} from "@revq/shared";
import { describe, expect, it } from "vitest";
import { added, addIds, createDataset, datasetOf } from "./fixtures/datasets.ts";
import { IMAGES } from "./fixtures/images.ts";
import {
  expireLease,
  getJob,
  type Job,
  lease,
  newWorld,
  uploadImages,
  type World,
  workerCall,
  writeTokensFor,
} from "./fixtures/jobs.ts";
import { registerOwnTokenizer, tinyTokenizer } from "./fixtures/tokenizer.ts";
import { call, expectProblem, json, newTenant } from "./helpers.ts";

type DatasetJob = Job & { shardJobs?: string[] };

function encode(world: World, inputs: Record<string, unknown>, extra = {}) {
  return call("/v1/jobs", { ...json({ kind: "encode", inputs, ...extra }), key: world.apiKey });
}

async function encoded(world: World, inputs: Record<string, unknown>, extra = {}) {
  const res = await encode(world, inputs, extra);
  expect(res.status).toBe(202);
  return (await res.json()) as DatasetJob;
}

function complete(world: World, task: LeasedTask) {
  return workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
    leaseId: task.leaseId,
    result: { kind: "encode" },
  });
}

/** Leases every queued shard task, writes its tokens (shard s's ids offset by s) and completes it. */
async function runShards(world: World): Promise<Uint32Array[]> {
  const tasks = await lease(world.workerKey, { max: 16 });
  const written: Uint32Array[] = [];
  for (const task of tasks) {
    if (task.payload.kind !== "encode" || !task.payload.shard) throw new Error("not a shard");
    const { count, shardSize, index } = task.payload.shard;
    written[index] = await writeTokensFor(
      task,
      world.tiny,
      Math.min(shardSize, count - index * shardSize),
    );
    expect((await complete(world, task)).status).toBe(200);
  }
  return written;
}

function download(world: World, path: string, headers: Record<string, string> = {}) {
  return call(path, { key: world.apiKey, headers });
}

describe("encode jobs on datasets", () => {
  it("cut the frozen dataset into shard jobs that workers lease in parallel; the job succeeds with every shard", async () => {
    const world = await newWorld();
    const { dataset, ids } = await datasetOf(world, 5);
    const job = await encoded(world, { dataset: dataset.id, shardSize: 2 });
    expect(job).toMatchObject({ kind: "encode", status: "queued", attempts: 0 });
    expect(job.inputs).toEqual({ dataset: dataset.id, shardSize: 2 });
    expect(job.shardJobs).toHaveLength(3);

    const tasks = await lease(world.workerKey, { max: 16 });
    expect(tasks.map((t) => t.kind)).toEqual(["encode", "encode", "encode"]);
    const shards = tasks.map((t) => (t.payload.kind === "encode" ? t.payload.shard : undefined));
    expect(shards.map((s) => s?.index)).toEqual([0, 1, 2]);
    expect(shards.every((s) => s?.count === 5 && s.shardSize === 2)).toBe(true);
    // The listing is what the task reads first: granted with the lease.
    expect(tasks[0].objects.map((o) => o.key)).toEqual([shards[0]?.listing]);
    for (const [i, task] of tasks.entries()) {
      const child = await getJob(world, task.jobId);
      expect(child).toMatchObject({ parent: job.id, inputs: { shards: [i] }, status: "running" });
    }

    await writeTokensFor(tasks[1], world.tiny, 2);
    expect((await complete(world, tasks[1])).status).toBe(200);
    expect(await getJob(world, job.id)).toMatchObject({
      status: "running",
      progress: { done: 2, total: 5, stage: "1 of 3 shards" },
    });
    const ids0 = await writeTokensFor(tasks[0], world.tiny, 2);
    const ids2 = await writeTokensFor(tasks[2], world.tiny, 1);
    expect((await complete(world, tasks[0])).status).toBe(200);
    expect((await complete(world, tasks[2])).status).toBe(200);

    const done = await getJob(world, job.id);
    expect(done).toMatchObject({
      status: "succeeded",
      progress: { done: 5, total: 5 },
      result: { tokens: { recordCount: 5, tokenizerHash: world.tiny.hash } },
    });
    expect(done.attempts).toBe(3);

    const manifestRes = await download(world, `/v1/jobs/${job.id}/shards`);
    expect(manifestRes.status).toBe(200);
    const manifest = (await manifestRes.json()) as TokenShardManifest;
    expect(manifest).toMatchObject({ job: job.id, dataset: dataset.id, recordCount: 5 });
    expect(manifest.shards.map((s) => [s.index, s.firstRecord, s.records])).toEqual([
      [0, 0, 2],
      [1, 2, 2],
      [2, 4, 1],
    ]);

    const indexRes = await download(world, `/v1/jobs/${job.id}/records`);
    expect(indexRes.status).toBe(200);
    const index = (await indexRes.json()) as RecordIndex;
    expect(index.records).toEqual(
      ids.map((imageId, record) => ({ record, shard: record >> 1, imageId })),
    );

    // The whole stream: one header, the records of all shards in order, their CRCs re-indexed.
    const whole = await download(world, `/v1/jobs/${job.id}/tokens`);
    expect(whole.status).toBe(200);
    const bytes = new Uint8Array(await whole.arrayBuffer());
    const decoded = readTokenStream(bytes);
    expect(decoded.header.recordCount).toBe(5);
    const ids1 = ids0; // writeTokensFor writes the same ids for equal record counts
    expect(Array.from(decoded.tokens)).toEqual([...ids0, ...ids1, ...ids2]);
    expect(whole.headers.get("content-length")).toBe(String(bytes.length));
    expect(whole.headers.get("etag")).toBe(
      `"${done.result?.tokens && (done.result.tokens as { etag: string }).etag}"`,
    );

    // A Range across the boundary of shards 0 and 1, and one inside the header and record 0.
    const stride = recordStride(decoded.header);
    for (const [from, to] of [
      [64 + stride + 3, 64 + 3 * stride - 2],
      [10, 64 + 5],
      [64 + 4 * stride, bytes.length - 1],
    ]) {
      const part = await download(world, `/v1/jobs/${job.id}/tokens`, {
        range: `bytes=${from}-${to}`,
      });
      expect(part.status).toBe(206);
      expect(part.headers.get("content-range")).toBe(`bytes ${from}-${to}/${bytes.length}`);
      expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(from, to + 1));
    }
    const etag = whole.headers.get("etag") as string;
    expect(
      (await download(world, `/v1/jobs/${job.id}/tokens`, { "if-none-match": etag })).status,
    ).toBe(304);
    await expectProblem(
      await download(world, `/v1/jobs/${job.id}/tokens`, { range: `bytes=${bytes.length}-` }),
      416,
      "range-not-satisfiable",
    );
    await expectProblem(
      await download(world, `/v1/jobs/${job.id}/tokens?format=json`),
      406,
      "format-not-for-dataset",
    );

    // Decoding or reconstructing it whole is refused: its shards are the streams.
    await expectProblem(
      await call("/v1/decode", { ...json({ job: job.id }), key: world.apiKey }),
      422,
      "format-not-for-dataset",
    );
    await expectProblem(
      await call("/v1/jobs", {
        ...json({ kind: "reconstruct", inputs: { job: job.id } }),
        key: world.apiKey,
      }),
      422,
      "format-not-for-dataset",
    );

    // Each shard in every form.
    const shard1 = await download(world, `/v1/jobs/${job.id}/shards/1/tokens`);
    expect(shard1.status).toBe(200);
    expect(shard1.headers.get("etag")).toBe(`"${manifest.shards[1].etag}"`);
    expect(Array.from(readTokenStream(new Uint8Array(await shard1.arrayBuffer())).tokens)).toEqual([
      ...ids1,
    ]);
    const asJson = await download(world, `/v1/jobs/${job.id}/shards/2/tokens?format=json`);
    expect(Array.from(readTokenJson(await asJson.json()).tokens)).toEqual([...ids2]);
    const asNpy = await download(world, `/v1/jobs/${job.id}/shards/0/tokens?format=npy`);
    const params = {
      tokenizerHash: world.tiny.hash,
      tokensPerRecord: 4,
      codesPerGroup: 4,
      groups: 4,
    };
    expect(
      Array.from(readTokenNpy(new Uint8Array(await asNpy.arrayBuffer()), params).tokens),
    ).toEqual([...ids0]);
    const ranged = await download(world, `/v1/jobs/${job.id}/shards/0/tokens`, {
      range: `bytes=64-${64 + stride - 1}`,
    });
    expect(ranged.status).toBe(206);
    for (const bad of ["3", "-1", "01", "x", "1e0"]) {
      await expectProblem(
        await download(world, `/v1/jobs/${job.id}/shards/${bad}/tokens`),
        404,
        "shard-not-found",
      );
    }
    await expectProblem(
      await download(world, `/v1/jobs/${job.id}/shards/0/tokens?format=xml`),
      400,
      "invalid-request",
    );
  });

  it("reuse the shards of the same listing, tokenizer and shard size: a second job succeeds at once", async () => {
    const world = await newWorld();
    const { dataset } = await datasetOf(world, 3);
    const first = await encoded(world, { dataset: dataset.id, shardSize: 2 });
    await runShards(world);
    const firstDone = await getJob(world, first.id);
    expect(firstDone.status).toBe("succeeded");

    const again = await encoded(world, { dataset: dataset.id, shardSize: 2 });
    expect(again).toMatchObject({ status: "succeeded", shardJobs: [] });
    expect(again.result).toEqual(firstDone.result);
    expect(await lease(world.workerKey, { max: 16 })).toEqual([]);

    // Another shard size is another cut: encoded again.
    const other = await encoded(world, { dataset: dataset.id, shardSize: 3 });
    expect(other.shardJobs).toHaveLength(1);
  });

  it("keep to the listing frozen at creation when the dataset changes meanwhile", async () => {
    const world = await newWorld();
    const { dataset } = await datasetOf(world, 2);
    const job = await encoded(world, { dataset: dataset.id });
    await added(await addIds(world.apiKey, dataset.id, await uploadImages(world.apiKey, 2)));
    await runShards(world);
    const done = await getJob(world, job.id);
    expect(done.status).toBe("succeeded");
    expect(done.result).toMatchObject({ tokens: { recordCount: 2 }, dataset: { shardSize: 256 } });
  });

  it("keep to the listing frozen at creation when the dataset is deleted meanwhile", async () => {
    const world = await newWorld();
    const { dataset, ids } = await datasetOf(world, 2);
    const job = await encoded(world, { dataset: dataset.id });
    const gone = await call(`/v1/datasets/${dataset.id}`, { method: "DELETE", key: world.apiKey });
    expect(gone.status).toBe(204);
    await runShards(world);
    expect((await getJob(world, job.id)).status).toBe("succeeded");
    const index = (await (
      await download(world, `/v1/jobs/${job.id}/records`)
    ).json()) as RecordIndex;
    expect(index.records.map((r) => r.imageId)).toEqual(ids);
  });

  it("encode a prefix dataset's files in key order, indexed by file", async () => {
    const world = await newWorld();
    for (const name of ["b.png", "a.png", "notes.txt", "c/d.png"]) {
      await env.BUCKET.put(bucketKeys.tenantFiles(world.id, `photos/${name}`), IMAGES.png);
    }
    const res = await call("/v1/datasets", {
      ...json({ name: "files", prefix: "photos/" }),
      key: world.apiKey,
    });
    expect(res.status).toBe(201);
    const dataset = (await res.json()) as { id: string };
    const job = await encoded(world, { dataset: dataset.id, shardSize: 2 });
    expect(job.shardJobs).toHaveLength(2);
    await runShards(world);
    const index = (await (
      await download(world, `/v1/jobs/${job.id}/records`)
    ).json()) as RecordIndex;
    expect(index.records).toEqual([
      { record: 0, shard: 0, file: "photos/a.png" },
      { record: 1, shard: 0, file: "photos/b.png" },
      { record: 2, shard: 1, file: "photos/c/d.png" },
    ]);
  });

  it("finish when their tokenizer is deleted mid-job: tokens stay downloadable", async () => {
    const world = await newWorld();
    const own = await registerOwnTokenizer(world.id, await tinyTokenizer("dataset-own"));
    const { dataset } = await datasetOf(world, 2);
    const job = await encoded(world, { dataset: dataset.id }, { tokenizer: own.id });
    const deleted = await call(`/v1/tokenizers/${own.id}`, { method: "DELETE", key: world.apiKey });
    expect(deleted.status).toBe(204);
    const [task] = await lease(world.workerKey, { max: 16 });
    if (task.payload.kind !== "encode") throw new Error("kind");
    await writeTokensFor(task, { ...world.tiny, hash: own.manifestHash }, 2);
    expect((await complete(world, task)).status).toBe(200);
    expect((await getJob(world, job.id)).status).toBe("succeeded");
    expect((await download(world, `/v1/jobs/${job.id}/tokens`)).status).toBe(200);
  });

  it("fail when a shard fails for good, cancelling the other shards; a cancel cancels every shard", async () => {
    const world = await newWorld();
    const { dataset } = await datasetOf(world, 3);
    const job = await encoded(world, { dataset: dataset.id, shardSize: 1 });
    const tasks = await lease(world.workerKey, { max: 2 });
    const failed = await workerCall(world.workerKey, `/tasks/${tasks[0].taskId}/fail`, {
      leaseId: tasks[0].leaseId,
      retryable: false,
      error: { code: "dataset-changed", message: "image 0 changed" },
    });
    expect(failed.status).toBe(200);
    const view = await getJob(world, job.id);
    expect(view).toMatchObject({ status: "failed", error: { code: "shard-failed" } });
    expect(view.error?.message).toContain("image 0 changed");
    for (const id of job.shardJobs?.slice(1) ?? []) {
      expect((await getJob(world, id)).status).toBe("cancelled");
    }
    // The holder of a cancelled shard learns it and cannot complete.
    await writeTokensFor(tasks[1], world.tiny, 1);
    await expectProblem(await complete(world, tasks[1]), 409, "job-cancelled");
    expect(await lease(world.workerKey, { max: 16 })).toEqual([]);

    const second = await encoded(world, { dataset: dataset.id, shardSize: 2 });
    const cancel = await call(`/v1/jobs/${second.id}/cancel`, {
      method: "POST",
      key: world.apiKey,
    });
    expect(cancel.status).toBe(200);
    for (const id of second.shardJobs ?? []) {
      expect((await getJob(world, id)).status).toBe("cancelled");
    }
  });

  it("retry a shard whose lease expired, alone", async () => {
    const world = await newWorld();
    const { dataset } = await datasetOf(world, 2);
    const job = await encoded(world, { dataset: dataset.id, shardSize: 1 });
    const [first, second] = await lease(world.workerKey, { max: 2 });
    await writeTokensFor(second, world.tiny, 1);
    expect((await complete(world, second)).status).toBe(200);
    await expireLease(first.taskId);
    const [again] = await lease(world.workerKey, { max: 2 });
    expect(again).toMatchObject({ taskId: first.taskId, attempt: 2 });
    await writeTokensFor(again, world.tiny, 1);
    expect((await complete(world, again)).status).toBe(200);
    expect(await getJob(world, job.id)).toMatchObject({ status: "succeeded", attempts: 3 });
  });

  it("refuse bad requests with a problem, creating nothing", async () => {
    const world = await newWorld();
    const { dataset, ids } = await datasetOf(world, 1);
    for (const shardSize of [0, -1, 4097, 1.5, "8"]) {
      await expectProblem(
        await encode(world, { dataset: dataset.id, shardSize }),
        400,
        "invalid-request",
      );
    }
    await expectProblem(
      await encode(world, { dataset: dataset.id, images: ids }),
      400,
      "invalid-request",
    );
    await expectProblem(await encode(world, { dataset: "" }), 400, "invalid-request");
    await expectProblem(
      await encode(world, { dataset: "dst_01m8d0fxvcpfrrd0dgccvp9czy" }),
      422,
      "dataset-not-found",
    );
    const other = await newTenant("other");
    const theirs = await createDataset(other.apiKey);
    await expectProblem(await encode(world, { dataset: theirs.id }), 422, "dataset-not-found");
    const empty = await createDataset(world.apiKey);
    await expectProblem(await encode(world, { dataset: empty.id }), 422, "dataset-empty");
    await expectProblem(
      await download(world, "/v1/jobs/job_01m8d0fxvcpfrrd0dgccvp9czy/shards"),
      404,
      "job-not-found",
    );
    const list = await call("/v1/jobs", { key: world.apiKey });
    expect(((await list.json()) as { jobs: unknown[] }).jobs).toEqual([]);
    const objects = await env.BUCKET.list({ prefix: `tenants/${world.id}/token-shards/` });
    expect(objects.objects).toEqual([]);
  });

  it("answer a job of named images: no shards, no record index", async () => {
    const world = await newWorld();
    const { ids } = await datasetOf(world, 1);
    const job = await encoded(world, { images: ids });
    await expectProblem(
      await download(world, `/v1/jobs/${job.id}/shards`),
      409,
      "tokens-not-ready",
    );
    const [task] = await lease(world.workerKey);
    await writeTokensFor(task, world.tiny);
    expect((await complete(world, task)).status).toBe(200);
    await expectProblem(await download(world, `/v1/jobs/${job.id}/shards`), 404, "no-shards");
    await expectProblem(await download(world, `/v1/jobs/${job.id}/records`), 404, "no-shards");
    await expectProblem(
      await download(world, `/v1/jobs/${job.id}/shards/0/tokens`),
      404,
      "no-shards",
    );
  });
});
