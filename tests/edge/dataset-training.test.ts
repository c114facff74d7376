import { env } from "cloudflare:workers";
import {
  bucketKeys,
  encodeDatasetListing,
  type LeasedTask,
  latentShardName,
  vaeHash,
} from "@revq/shared";
import { describe, expect, it } from "vitest";
import { configOf } from "../../edge/src/config.ts";
import { database } from "../../edge/src/db/client.ts";
import { createJob } from "../../edge/src/services/jobs/create.ts";
import { createDataset, datasetOf } from "./fixtures/datasets.ts";
import { IMAGES } from "./fixtures/images.ts";
import { getJob, lease, newWorld, uploadImages, type World, workerCall } from "./fixtures/jobs.ts";
import { call, expectProblem, json } from "./helpers.ts";

type TrainJob = { id: string; kind: string; status: string; extractJobs?: string[] };

async function train(world: World, inputs: Record<string, unknown>, extra = {}) {
  return call("/v1/jobs", { ...json({ kind: "train", inputs, ...extra }), key: world.apiKey });
}

async function trained(world: World, inputs: Record<string, unknown>): Promise<TrainJob> {
  const res = await train(world, inputs);
  expect(res.status).toBe(202);
  return (await res.json()) as TrainJob;
}

/** Every queued task, in the order workers get them. */
async function leaseAll(world: World): Promise<LeasedTask[]> {
  return lease(world.workerKey, { max: 16 });
}

async function putShards(prefix: string, indices: number[]) {
  for (const i of indices) await env.BUCKET.put(prefix + latentShardName(i), new Uint8Array(8));
}

describe("train jobs on datasets", () => {
  it("freeze the dataset into a listing and queue extract jobs for its missing shards first", async () => {
    const world = await newWorld();
    expect(env.DEFAULT_TOKENIZER).toBe(world.tiny.hash);
    const { dataset, ids } = await datasetOf(world, 9);
    const job = await trained(world, { dataset: dataset.id });
    expect(job.extractJobs).toHaveLength(3);

    const tasks = await leaseAll(world);
    expect(tasks.map((t) => t.kind)).toEqual(["extract", "extract", "extract", "train"]);
    const trainTask = tasks[3];
    if (trainTask.payload.kind !== "train") throw new Error("kind");
    const rows = await database(env)
      .query.images.findMany({ where: (images, { inArray }) => inArray(images.id, ids) })
      .then((found) => ids.map((id) => found.find((row) => row.id === id)));
    const { bytes, hash } = await encodeDatasetListing(
      rows.map((row) => ({ key: row?.bucketKey as string, etag: row?.sha256 as string })),
    );
    const latents = bucketKeys.latents(world.id, hash, await vaeHash(world.tiny.manifest.vae), 2);
    expect(trainTask.payload).toMatchObject({
      base: { manifestHash: world.tiny.hash },
      dataset: {
        listing: bucketKeys.datasetListing(world.id, hash),
        listingHash: hash,
        count: 9,
        latents,
        shardSize: 2,
      },
    });
    const listing = await env.BUCKET.get(bucketKeys.datasetListing(world.id, hash));
    expect(new Uint8Array(await (listing as R2ObjectBody).arrayBuffer())).toEqual(bytes);
    expect(tasks.slice(0, 3).map((t) => t.payload)).toEqual(
      [[0, 1], [2, 3], [4]].map((shards) => ({
        kind: "extract",
        vae: trainTask.payload.kind === "train" ? trainTask.payload.base : undefined,
        dataset: trainTask.payload.kind === "train" ? trainTask.payload.dataset : undefined,
        shards,
      })),
    );

    const view = await getJob(world, job.id);
    expect(view).toMatchObject({
      baseTokenizer: { manifestHash: world.tiny.hash },
      tokenizer: null,
      inputs: { dataset: dataset.id },
      parameters: {},
    });
    expect((view as unknown as TrainJob).extractJobs).toEqual(
      tasks.slice(0, 3).map((t) => t.jobId),
    );
    const extractJob = await getJob(world, tasks[0].jobId);
    expect(extractJob).toMatchObject({
      kind: "extract",
      status: "running",
      parent: job.id,
      inputs: { shards: [0, 1] },
    });
    const listed = (await (await call("/v1/jobs?kind=extract", { key: world.apiKey })).json()) as {
      jobs: { id: string }[];
    };
    expect(new Set(listed.jobs.map((j) => j.id))).toEqual(new Set(job.extractJobs));
  });

  it("an extract job completes only once its shards are in the bucket, and its failure leaves the training be", async () => {
    const world = await newWorld();
    const hook = await call("/v1/webhooks", {
      ...json({ url: `${env.WEBHOOK_RECEIVER}/ok/extract`, events: ["job.failed"] }),
      key: world.apiKey,
    });
    expect(hook.status).toBe(201);
    const { dataset } = await datasetOf(world, 6);
    const job = await trained(world, { dataset: dataset.id });
    const [first, second] = await leaseAll(world);
    if (first.payload.kind !== "extract") throw new Error("kind");
    const complete = () =>
      workerCall(world.workerKey, `/tasks/${first.taskId}/complete`, {
        leaseId: first.leaseId,
        result: { kind: "extract" },
      });
    const prefix = first.payload.dataset.latents;
    await putShards(prefix, [0]);
    const problem = await expectProblem(await complete(), 422, "invalid-result");
    expect(problem.detail).toContain(latentShardName(1));
    await putShards(prefix, [1]);
    expect((await complete()).status).toBe(200);
    expect(await getJob(world, first.jobId)).toMatchObject({
      status: "succeeded",
      result: {
        shards: [
          { index: 0, bytes: 8 },
          { index: 1, bytes: 8 },
        ],
      },
    });

    const failed = await workerCall(world.workerKey, `/tasks/${second.taskId}/fail`, {
      leaseId: second.leaseId,
      retryable: false,
      error: { code: "undecodable", message: "no" },
    });
    expect(failed.status).toBe(200);
    expect((await getJob(world, second.jobId)).status).toBe("failed");
    expect((await getJob(world, job.id)).status).toBe("running");
    // Nor does it reach the tenant's webhooks: only its train job's ending does.
    const deliveries = await call(`/v1/jobs/${second.jobId}/deliveries`, { key: world.apiKey });
    expect(await deliveries.json()).toEqual({ deliveries: [], nextCursor: null });
  });

  it("reuse the shards already extracted: none missing, or one, makes no extract job", async () => {
    const world = await newWorld();
    const { dataset } = await datasetOf(world, 5);
    const firstJob = await trained(world, { dataset: dataset.id });
    expect(firstJob.extractJobs).toHaveLength(2);
    const tasks = await leaseAll(world);
    const prefix = tasks[0].payload.kind === "extract" ? tasks[0].payload.dataset.latents : "";
    await putShards(prefix, [0, 1]);
    const oneMissing = await trained(world, { dataset: dataset.id });
    expect(oneMissing.extractJobs).toEqual([]);
    await putShards(prefix, [2]);
    const noneMissing = await trained(world, { dataset: dataset.id });
    expect(noneMissing.extractJobs).toEqual([]);
    const [task] = await leaseAll(world);
    if (task.payload.kind !== "train") throw new Error("kind");
    expect(task.payload.dataset.latents).toBe(prefix);
  });

  it("cancelling a train job cancels its unfinished extract jobs", async () => {
    const world = await newWorld();
    const { dataset } = await datasetOf(world, 6);
    const job = await trained(world, { dataset: dataset.id });
    const [running] = await lease(world.workerKey, { kinds: ["extract"] });
    const res = await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: world.apiKey });
    expect(res.status).toBe(200);
    for (const id of job.extractJobs ?? []) {
      expect((await getJob(world, id)).status).toBe("cancelled");
    }
    const beat = await workerCall(world.workerKey, `/tasks/${running.taskId}/heartbeat`, {
      leaseId: running.leaseId,
    });
    expect(await beat.json()).toMatchObject({ cancelled: true });
    expect(await leaseAll(world)).toEqual([]);
  });

  it("inline images make a listing too, and a prefix dataset lists the image files under it", async () => {
    const world = await newWorld();
    const ids = await uploadImages(world.apiKey, 2);
    const inline = await trained(world, { images: ids });
    expect(inline.extractJobs).toEqual([]);
    const [inlineTask] = await leaseAll(world);
    expect(inlineTask.payload).toMatchObject({ dataset: { count: 2, shardSize: 2 } });

    const files = (path: string) => bucketKeys.tenantFiles(world.id, path);
    for (const path of ["photos/b.PNG", "photos/a.jpeg", "photos/sub/c.webp", "photos/notes.txt"]) {
      await env.BUCKET.put(files(path), IMAGES.png);
    }
    await env.BUCKET.put(files("other/d.png"), IMAGES.png);
    const dataset = await createDataset(world.apiKey, { prefix: "photos/" });
    const job = await trained(world, { dataset: dataset.id });
    expect(job.extractJobs).toHaveLength(1);
    const tasks = await leaseAll(world);
    const trainTask = tasks[tasks.length - 1];
    if (trainTask.payload.kind !== "train") throw new Error("kind");
    const listing = await env.BUCKET.get(trainTask.payload.dataset.listing);
    const { images } = JSON.parse(await (listing as R2ObjectBody).text()) as {
      images: { key: string; etag: string }[];
    };
    const etag = (await env.BUCKET.head(files("photos/a.jpeg")))?.etag;
    expect(images).toEqual(
      ["photos/a.jpeg", "photos/b.PNG", "photos/sub/c.webp"].map((p) => ({ key: files(p), etag })),
    );
  });

  it("refuses datasets it cannot train on, and queues nothing", async () => {
    const world = await newWorld();
    const stranger = await newWorld();
    const foreign = await createDataset(stranger.apiKey);
    await expectProblem(await train(world, { dataset: foreign.id }), 422, "dataset-not-found");
    const empty = await createDataset(world.apiKey);
    await expectProblem(await train(world, { dataset: empty.id }), 422, "dataset-empty");
    const nothing = await createDataset(world.apiKey, { prefix: "nothing/" });
    await expectProblem(await train(world, { dataset: nothing.id }), 422, "dataset-empty");
    for (let i = 0; i < 11; i++) {
      await env.BUCKET.put(bucketKeys.tenantFiles(world.id, `many/${i}.png`), IMAGES.png);
    }
    const many = await createDataset(world.apiKey, { prefix: "many/" });
    await expectProblem(await train(world, { dataset: many.id }), 422, "dataset-too-large");
    await expectProblem(
      await train(world, { dataset: empty.id, images: ["img_x"] }),
      400,
      "invalid-request",
    );
    expect(await leaseAll(world)).toEqual([]);
  });

  it("need a tokenizer when the deployment has no default", async () => {
    const world = await newWorld();
    const { dataset } = await datasetOf(world, 1);
    const config = { ...configOf(env), defaultTokenizer: undefined };
    const body = { kind: "train" as const, inputs: { dataset: dataset.id }, parameters: {} };
    await expect(createJob(env, database(env), config, world.id, body)).rejects.toMatchObject({
      status: 422,
      code: "tokenizer-required",
    });
    const { job: named } = await createJob(env, database(env), config, world.id, {
      ...body,
      baseTokenizer: world.tokenizerId,
    });
    expect(named.tokenizerHash).toBe(world.tiny.hash);
  });
});
