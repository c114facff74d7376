/**
 * Training as a service on the whole local stack (wrangler dev + real revq-worker processes, on
 * wasm): a dataset filled by one tar upload → a train job naming only the dataset, so on the
 * deployment's default tokenizer (the tiny one) → extract jobs on both workers and the train task
 * sharing the latent shards → the new tokenizer ready at the edge → a signed training.succeeded
 * webhook at a receiver on loopback → encode with the new tokenizer; a second training on the
 * dataset extracts nothing. And a worker SIGKILLed mid-training: the task comes back after its
 * lease (3 s here) and another worker resumes from the last checkpoint, the loss curve going on
 * where it stopped.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { bucketKeys, readTokenStream } from "@revq/shared";
import { packTar } from "modern-tar";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { LocalEdge } from "./support/edge.ts";
import { s3DoorBucket } from "./support/s3-door.ts";
import { buildTinyTokenizer, syntheticImage } from "./support/tiny-tokenizer.ts";
import { type LogLine, WorkerProcess } from "./support/worker-process.ts";
import {
  bytesOf,
  createJob,
  type Job,
  jobEvents,
  registerTokenizer,
  type Tenant,
  upload,
  waitForJob,
} from "./support/world.ts";

let edge: LocalEdge;
const workers: WorkerProcess[] = [];
let base: { id: string; manifestHash: string };
let receiver: Server;
const received: { headers: Record<string, string>; body: string }[] = [];

/** The tiny VAE's 8×8×8 latents as 128 tokens of 4, 16 codes each, a 16-channel rectifier. */
const PARAMETERS = {
  name: "trained-end-to-end",
  tokens: 128,
  codes: 16,
  batchSize: 4,
  seed: 1,
  rectifier: { channels: 16, blocks: 1, headDim: 8, multiscales: [5] },
};

/** Images per latent shard at this edge: the happy path's 24 images make 6 shards, 3 extract jobs. */
const SHARD_SIZE = 4;

type TokenizerRef = NonNullable<Job["tokenizer"]>;
type TrainJob = Job & { extractJobs: string[]; baseTokenizer: TokenizerRef };

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function startWorker(tenant: Tenant, name: string) {
  const worker = new WorkerProcess(edge, {
    name,
    workerKey: tenant.workerKey,
    tasks: 1,
    batchSize: 8,
  });
  workers.push(worker);
  return worker;
}

async function uploadImages(tenant: Tenant, count: number, seed: number): Promise<string[]> {
  const sent = await Promise.all(
    Array.from({ length: count }, async (_, i) => ({
      bytes: await syntheticImage(seed + i),
      format: "png" as const,
    })),
  );
  return upload(edge, tenant, sent);
}

/** A new upload dataset, filled by one tar archive of `count` synthetic PNGs; its image ids. */
async function tarDataset(tenant: Tenant, count: number, seed: number) {
  const dataset = await edge.api<{ id: string }>("POST", "/v1/datasets", tenant.apiKey, {
    name: "synthetic",
  });
  const files = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const body = await syntheticImage(seed + i);
      const name = `synthetic/${String(i).padStart(3, "0")}.png`;
      return { header: { name, size: body.length }, body };
    }),
  );
  const added = await edge.api<{ added: number; imageIds: string[] }>(
    "POST",
    `/v1/datasets/${dataset.id}/images`,
    tenant.apiKey,
    await packTar(files),
    { "content-type": "application/x-tar" },
  );
  expect(added.added).toBe(count);
  return { id: dataset.id, imageIds: added.imageIds };
}

/** Every log line `msg` of these workers, with the worker's name. */
function linesOf(of: WorkerProcess[], names: string[], msg: string): (LogLine & { by: string })[] {
  return of.flatMap((w, i) =>
    w.lines.filter((l) => l.msg === msg).map((l) => ({ ...l, by: names[i] })),
  );
}

type Checkpoint = { epoch: number; history: { epoch: number; lossRectifier: number }[] };

async function checkpointOf(tenant: Tenant, jobId: string): Promise<Checkpoint> {
  const bucket = s3DoorBucket(edge.s3);
  const key = `${bucketKeys.jobCheckpoints(tenant.tenantId, jobId)}state/checkpoint.json`;
  return JSON.parse(new TextDecoder().decode(await bucket.get(key)));
}

beforeAll(async () => {
  receiver = createServer(async (req, res) => {
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    received.push({ headers, body: await readBody(req) });
    res.writeHead(204);
    res.end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  await selectBackend("wasm");
  // The tiny tokenizer is the deployment's default: a train job that names none trains on it.
  const built = await buildTinyTokenizer();
  edge = new LocalEdge({
    LEASE_SECONDS: "3",
    MAX_LEASE_WAIT_SECONDS: "2",
    ALLOW_LOOPBACK_WEBHOOKS: "true",
    DEFAULT_TOKENIZER: built.hash,
    // Small shards, two to an extract job, so that a training of a few dozen images has some.
    LATENT_SHARD_SIZE: String(SHARD_SIZE),
    EXTRACT_TASK_SHARDS: "2",
  });
  await edge.start();
  base = { id: await registerTokenizer(edge, built), manifestHash: built.hash };
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await edge.dispose();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

describe("training on the local stack", () => {
  it("trains the default tokenizer's VAE on a tar-uploaded dataset, the latents extracted by both workers, then reused", async () => {
    const tenant = await edge.tenant("train-happy");
    const names = ["w-one", "w-two"];
    const pair = names.map((name) => startWorker(tenant, name));
    const dataset = await tarDataset(tenant, 24, 2000);
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/happy`;
    const job = (await createJob(edge, tenant, {
      kind: "train",
      inputs: { dataset: dataset.id },
      parameters: { ...PARAMETERS, epochs: 3 },
      webhookUrl: url,
    })) as TrainJob;
    // 24 images in 6 shards of 4, none extracted yet: 3 extract jobs of 2 shards, queued ahead.
    expect(job.baseTokenizer.manifestHash).toBe(base.manifestHash);
    expect(job.extractJobs).toHaveLength(3);
    const secret = (job as unknown as { webhookSecret: string }).webhookSecret;
    const done = await waitForJob(edge, tenant, job.id, undefined, 100_000);
    expect(done, JSON.stringify(done.error)).toMatchObject({ status: "succeeded", attempts: 1 });
    for (const id of job.extractJobs) {
      expect(await waitForJob(edge, tenant, id)).toMatchObject({ status: "succeeded" });
    }

    // Both workers extracted shards; the train task read theirs and extracted at most what was
    // still under way, walking from the last shard back; about every shard was encoded once.
    const extracted = linesOf(pair, names, "latents extracted");
    const [ready] = linesOf(pair, names, "latents ready");
    expect(new Set(extracted.filter((l) => Number(l.extracted) > 0).map((l) => l.by))).toEqual(
      new Set(names),
    );
    expect(ready).toMatchObject({ jobId: job.id, latentShards: 6 });
    expect(Number(ready.latentShardsReused)).toBeGreaterThanOrEqual(2);
    const encoded =
      extracted.reduce((sum, l) => sum + Number(l.extracted), 0) +
      Number(ready.latentShardsExtracted);
    expect(encoded).toBeGreaterThanOrEqual(6);
    expect(encoded).toBeLessThanOrEqual(6 + 2);
    const events = await jobEvents(edge, tenant, job.id);
    expect(events.find((e) => e.type === "metrics" && "latentShards" in e.data)?.data).toEqual({
      latentShards: 6,
      latentShardsReused: ready.latentShardsReused,
      latentShardsExtracted: ready.latentShardsExtracted,
      latentSeconds: ready.latentSeconds,
    });

    const trained = done.tokenizer as TokenizerRef;
    const listed = await edge.api<{ status: string; manifestHash: string }>(
      "GET",
      `/v1/tokenizers/${trained.id}`,
      tenant.apiKey,
    );
    // Its held-out evaluation (2 of 24 images held out), on the job and on the tokenizer.
    expect(done.evaluation).toMatchObject({
      heldOut: { latents: 2, images: 2 },
      bitsPerImage: 512,
    });
    expect(listed).toMatchObject({
      status: "ready",
      manifestHash: trained.manifestHash,
      evaluation: done.evaluation,
    });

    // Each epoch's figures once, in order; progress counts an epoch's steps.
    const epochs = events.filter((e) => e.type === "metrics" && "epoch" in e.data);
    expect(epochs.map((e) => e.data.epoch)).toEqual([1, 2, 3]);
    const progress = events.filter((e) => e.type === "progress");
    expect(progress.some((e) => /^epoch [123]\/3/.test(String(e.data.stage)))).toBe(true);

    // The webhook: delivered by the edge's queue consumer, signed per Standard Webhooks.
    const deadline = Date.now() + 20_000;
    while (!received.some((r) => r.body.includes(job.id)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const delivery = received.find((r) => r.body.includes(job.id));
    if (!delivery) throw new Error("no webhook delivery arrived");
    const event = new Webhook(secret).verify(delivery.body, delivery.headers) as {
      type: string;
      data: { job: { id: string; status: string } };
    };
    expect(event.type).toBe("training.succeeded");
    expect(event.data.job).toMatchObject({
      id: job.id,
      status: "succeeded",
      tokenizer: trained,
      evaluation: done.evaluation,
    });

    const encode = await createJob(edge, tenant, {
      kind: "encode",
      tokenizer: trained.id,
      inputs: { images: dataset.imageIds.slice(0, 2) },
    });
    expect(await waitForJob(edge, tenant, encode.id)).toMatchObject({ status: "succeeded" });
    const stream = readTokenStream(
      await bytesOf(edge, `/v1/jobs/${encode.id}/tokens`, tenant.apiKey),
    );
    expect(stream.header).toMatchObject({
      tokenizerHash: trained.manifestHash,
      tokensPerRecord: 128,
      codesPerGroup: 16,
    });
    expect(stream.tokens.length).toBe(256);

    // The same dataset again: its latents exist, so no extract job and nothing extracted. Asked
    // for every code of each of 128 groups used by 22 latents, the tokenizer is not registered.
    const again = (await createJob(edge, tenant, {
      kind: "train",
      inputs: { dataset: dataset.id },
      parameters: { ...PARAMETERS, epochs: 1, require: { minUsage: 1 } },
    })) as TrainJob;
    expect(again.extractJobs).toEqual([]);
    const missed = await waitForJob(edge, tenant, again.id, undefined, 60_000);
    expect(missed).toMatchObject({
      status: "failed",
      attempts: 1,
      tokenizer: null,
      error: { code: "evaluation-below-threshold" },
      evaluation: { heldOut: { latents: 2, images: 2 } },
    });
    expect(missed.error?.message).toMatch(/least group's usage 0\.\d+, below the 1 required/);
    const reused = linesOf(pair, names, "latents ready").find((l) => l.jobId === again.id);
    expect(reused).toMatchObject({ latentShardsReused: 6, latentShardsExtracted: 0 });
    expect(linesOf(pair, names, "latents extracted")).toHaveLength(extracted.length);
  });

  it("resumes a SIGKILLed worker's training on another worker from the last checkpoint", async () => {
    const tenant = await edge.tenant("train-sigkill");
    const first = startWorker(tenant, "w-killed");
    const images = await uploadImages(tenant, 40, 3000);
    const job = await createJob(edge, tenant, {
      kind: "train",
      baseTokenizer: base.id,
      inputs: { images },
      parameters: { ...PARAMETERS, epochs: 10 },
    });
    await first.waitFor((l) => l.msg === "epoch done" && Number(l.epoch) >= 2);
    first.kill("SIGKILL");
    await first.exited;
    const seen = await checkpointOf(tenant, job.id);
    expect(seen.epoch).toBeGreaterThanOrEqual(2);
    expect(seen.epoch).toBeLessThan(10);

    const second = startWorker(tenant, "w-rescuer");
    const resumed = await second.waitFor((l) => l.msg === "resuming training", 30_000);
    expect(resumed).toMatchObject({ jobId: job.id, afterEpoch: seen.epoch, epochs: 10 });
    const done = await waitForJob(edge, tenant, job.id, undefined, 100_000);
    expect(done, JSON.stringify(done.error)).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(second.lines.filter((l) => l.msg === "epoch done").map((l) => l.epoch)).toEqual(
      Array.from({ length: 10 - seen.epoch }, (_, i) => seen.epoch + i + 1),
    );

    // One curve: the killed worker's epochs, then the rescuer's, in the final checkpoint.
    const final = await checkpointOf(tenant, job.id);
    expect(final.history.map((r) => r.epoch)).toEqual([...Array(10).keys()]);
    expect(final.history.slice(0, seen.epoch)).toEqual(seen.history);
    // The job's epoch metric sets follow the same curve: each epoch once, in order, to the last.
    const epochsInEvents = (await jobEvents(edge, tenant, job.id))
      .filter((e) => e.type === "metrics" && "epoch" in e.data)
      .map((e) => Number(e.data.epoch));
    expect(epochsInEvents).toEqual([...new Set(epochsInEvents)].toSorted((a, b) => a - b));
    expect(epochsInEvents.at(-1)).toBe(10);
  });
});
