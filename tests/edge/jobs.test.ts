import { env } from "cloudflare:workers";
import {
  bucketKeys,
  MAX_JOB_PARAMETERS_BYTES,
  MAX_JSON_BODY_BYTES,
  manifestHash,
  parseManifest,
} from "@revq/shared";
import { describe, expect, it } from "vitest";
import { IMAGES } from "./fixtures/images.ts";
import {
  createEncodeJob,
  getJob,
  lease,
  newWorld,
  uploadImages,
  workerCall,
  writeTokensFor,
} from "./fixtures/jobs.ts";
import { EVALUATION, tinyTokenizer } from "./fixtures/tokenizer.ts";
import { call, expectProblem, json, newTenant } from "./helpers.ts";

describe("POST /v1/jobs", () => {
  it("queues an encode job whose task carries everything a worker needs", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world, 2);
    expect(job).toMatchObject({
      kind: "encode",
      status: "queued",
      attempts: 0,
      tokenizer: { id: world.tokenizerId, manifestHash: world.tiny.hash },
      result: null,
    });
    // What the request named, one level: no train job's fields.
    expect(Object.keys(job.inputs as object)).toEqual(["images"]);
    expect(job).not.toHaveProperty("parameters");
    expect(job).not.toHaveProperty("baseTokenizer");
    const [task] = await lease(world.workerKey);
    expect(task.jobId).toBe(job.id);
    expect(task.payload).toMatchObject({
      kind: "encode",
      tokenizer: {
        manifestHash: world.tiny.hash,
        manifestKey: `tokenizers/${world.tiny.hash}/manifest.json`,
        filesPrefix: `tokenizers/${world.tiny.hash}/files/`,
      },
      output: { tokens: `tenants/${world.id}/jobs/${job.id}/tokens.rvqt` },
    });
    if (task.payload.kind !== "encode") throw new Error("kind");
    expect(task.payload.images.map((i) => i.bucketKey)).toEqual(
      task.payload.images.map((i) => `tenants/${world.id}/images/${i.imageId}`),
    );
    expect((await getJob(world, job.id)).status).toBe("running");
  });

  it("refuses bad references and leaves no job behind", async () => {
    const world = await newWorld();
    const other = await newTenant();
    const [foreignImage] = await uploadImages(other.apiKey, 1);
    const [image] = await uploadImages(world.apiKey, 1);
    const post = (body: unknown) => call("/v1/jobs", { ...json(body), key: world.apiKey });
    const encode = (over: Record<string, unknown>) => ({
      kind: "encode",
      tokenizer: world.tokenizerId,
      inputs: { images: [image] },
      ...over,
    });
    await expectProblem(await post(encode({ kind: "decode" })), 400, "invalid-request");
    await expectProblem(await post(encode({ inputs: { images: [] } })), 400, "invalid-request");
    await expectProblem(
      await post(encode({ inputs: { images: [image, image] } })),
      400,
      "invalid-request",
    );
    await expectProblem(await post(encode({ extra: 1 })), 400, "invalid-request");
    await expectProblem(
      await post(encode({ webhookUrl: "ftp://example.com/x" })),
      400,
      "invalid-request",
    );
    await expectProblem(
      await post(encode({ tokenizer: "tok_unknown" })),
      422,
      "tokenizer-not-found",
    );
    await expectProblem(
      await post(encode({ inputs: { images: [foreignImage] } })),
      422,
      "image-not-found",
    );
    await expectProblem(
      await post({
        kind: "reconstruct",
        tokenizer: world.tokenizerId,
        inputs: { job: "job_nope" },
      }),
      422,
      "job-not-found",
    );
    const list = (await (await call("/v1/jobs", { key: world.apiKey })).json()) as {
      jobs: unknown[];
    };
    expect(list.jobs).toEqual([]);
  });

  it("refuses training parameters the worker would refuse, naming each, before any job exists", async () => {
    const world = await newWorld();
    const images = await uploadImages(world.apiKey, 1);
    const cases: [Record<string, unknown>, string][] = [
      [{ epochz: 1 }, "json.parameters"],
      [{ batchSize: 0 }, "json.parameters.batchSize"],
      [{ epochs: 1e9 }, "json.parameters.epochs"],
      [{ learningRates: { quantizer: "NaN" } }, "json.parameters.learningRates.quantizer"],
      [{ preset: "huge" }, "json.parameters.preset"],
      [{ rectifier: { residual: "yes" } }, "json.parameters.rectifier.residual"],
      [{ rectifier: { blocks: 0 } }, "json.parameters.rectifier.blocks"],
      [{ rectifierLoss: "pixels" }, "json.parameters.rectifierLoss"],
      [
        { rectifierLoss: "decoder", rectifierLossWeighting: "latent-variance" },
        "json.parameters.rectifierLossWeighting",
      ],
      [
        { rectifierLoss: "image", rectifierLossWeighting: "latent-variance" },
        "json.parameters.rectifierLossWeighting",
      ],
      [{ rectifier: { width: 8 } }, "json.parameters.rectifier"],
      [{ require: { minUsage: 2 } }, "json.parameters.require.minUsage"],
      [{ require: { maxPsnrGapDb: -1 } }, "json.parameters.require.maxPsnrGapDb"],
      [{ require: { rectifierMustHelp: "yes" } }, "json.parameters.require.rectifierMustHelp"],
      [{ require: { maxPsnrGap: 1 } }, "json.parameters.require"],
    ];
    for (const [parameters, path] of cases) {
      const res = await call("/v1/jobs", {
        ...json({ kind: "train", inputs: { images }, parameters }),
        key: world.apiKey,
      });
      const problem = (await expectProblem(res, 400, "invalid-request")) as {
        errors?: { path: string }[];
      };
      expect(problem.errors?.map((e) => e.path)).toContain(path);
    }
    const page = (await (await call("/v1/jobs", { key: world.apiKey })).json()) as {
      jobs: unknown[];
    };
    expect(page.jobs).toEqual([]);
  });

  it("bounds the body and the parameters, leaving no job behind; a job within them is stored whole", async () => {
    const world = await newWorld();
    const images = await uploadImages(world.apiKey, 1);
    const train = (description: string) =>
      JSON.stringify({ kind: "train", inputs: { images }, parameters: { description } });
    const post = (body: BodyInit) =>
      call("/v1/jobs", {
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
        key: world.apiKey,
        duplex: "half",
      } as RequestInit);
    const oversized = train("x".repeat(MAX_JSON_BODY_BYTES));
    await expectProblem(await post(oversized), 413, "content-too-large");
    // Without a Content-Length the body is counted as it arrives.
    const chunked = new Blob([oversized]).stream();
    await expectProblem(await post(chunked), 413, "content-too-large");
    const problem = await expectProblem(
      await post(train("x".repeat(MAX_JOB_PARAMETERS_BYTES))),
      400,
      "invalid-request",
    );
    expect(problem.detail).toContain("json.parameters");
    const list = async () => {
      const page = await (await call("/v1/jobs", { key: world.apiKey })).json();
      return (page as { jobs: { inputs: Record<string, unknown> }[] }).jobs;
    };
    expect(await list()).toEqual([]);
    expect(await lease(world.workerKey, { kinds: ["train"] })).toEqual([]);

    // As long as a tokenizer's description may be (the manifest's limit, below the bytes').
    const description = "x".repeat(10_000);
    const created = await post(train(description));
    expect(created.status).toBe(202);
    const [job] = await list();
    expect(job).toMatchObject({ inputs: { images }, parameters: { description } });
    const [task] = await lease(world.workerKey, { kinds: ["train"] });
    expect(task.payload).toMatchObject({ kind: "train", parameters: { description } });
  });

  it("honours Idempotency-Key", async () => {
    const world = await newWorld();
    const [image] = await uploadImages(world.apiKey, 1);
    const body = { kind: "encode", tokenizer: world.tokenizerId, inputs: { images: [image] } };
    const headers = { "idempotency-key": "job-1", "content-type": "application/json" };
    const send = (b: unknown) =>
      call("/v1/jobs", { method: "POST", body: JSON.stringify(b), headers, key: world.apiKey });
    const first = (await (await send(body)).json()) as { id: string };
    const again = await send({ inputs: body.inputs, tokenizer: body.tokenizer, kind: "encode" });
    expect(again.status).toBe(202);
    expect(((await again.json()) as { id: string }).id).toBe(first.id);
    await expectProblem(
      await send({ ...body, webhookUrl: "https://example.com/hook" }),
      422,
      "idempotency-key-reused",
    );
  });
});

describe("reading jobs", () => {
  it("lists with filters and cursor pagination, newest first", async () => {
    const world = await newWorld();
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createEncodeJob(world)).id);
    await call(`/v1/jobs/${created[1]}/cancel`, { method: "POST", key: world.apiKey });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : "?limit=2";
      const page = (await (await call(`/v1/jobs${query}`, { key: world.apiKey })).json()) as {
        jobs: { id: string }[];
        nextCursor: string | null;
      };
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...created].reverse());

    const cancelled = (await (
      await call("/v1/jobs?status=cancelled", { key: world.apiKey })
    ).json()) as {
      jobs: { id: string }[];
    };
    expect(cancelled.jobs.map((j) => j.id)).toEqual([created[1]]);
    const trains = (await (await call("/v1/jobs?kind=train", { key: world.apiKey })).json()) as {
      jobs: unknown[];
    };
    expect(trains.jobs).toEqual([]);
    await expectProblem(
      await call("/v1/jobs?cursor=garbage", { key: world.apiKey }),
      400,
      "invalid-cursor",
    );
    await expectProblem(
      await call("/v1/jobs?limit=0", { key: world.apiKey }),
      400,
      "invalid-request",
    );
  });

  it("another tenant's job is a 404 everywhere", async () => {
    const world = await newWorld();
    const other = await newTenant();
    const job = await createEncodeJob(world);
    for (const path of [`/v1/jobs/${job.id}`, `/v1/jobs/${job.id}/events`]) {
      await expectProblem(await call(path, { key: other.apiKey }), 404, "job-not-found");
    }
    await expectProblem(
      await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: other.apiKey }),
      404,
      "job-not-found",
    );
    const list = (await (await call("/v1/jobs", { key: other.apiKey })).json()) as {
      jobs: unknown[];
    };
    expect(list.jobs).toEqual([]);
    // Nor can the other tenant's workers see its task.
    expect(await lease(other.workerKey)).toEqual([]);
  });
});

describe("cancel and events", () => {
  it("cancels a queued job: its task is never leased, a repeat is harmless", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const res = await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: world.apiKey });
    expect(((await res.json()) as { status: string }).status).toBe("cancelled");
    const again = await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: world.apiKey });
    expect(again.status).toBe(200);
    expect(await lease(world.workerKey)).toEqual([]);
  });

  it("cancels a running job: the worker hears it at its heartbeat and cannot complete", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: world.apiKey });
    const beat = await workerCall(world.workerKey, `/tasks/${task.taskId}/heartbeat`, {
      leaseId: task.leaseId,
    });
    expect(await beat.json()).toEqual({ cancelled: true, leaseExpiresAt: null });
    await writeTokensFor(task, world.tiny);
    await expectProblem(
      await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
        leaseId: task.leaseId,
        result: { kind: "encode" },
      }),
      409,
      "job-cancelled",
    );
    expect((await getJob(world, job.id)).status).toBe("cancelled");
  });

  it("a finished job cannot be cancelled", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    await writeTokensFor(task, world.tiny);
    await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "encode" },
    });
    await expectProblem(
      await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: world.apiKey }),
      409,
      "job-finished",
    );
  });

  it("records status, progress, metrics and messages in order, paged by `after`", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const [task] = await lease(world.workerKey, { worker: "gpu-1" });
    await workerCall(world.workerKey, `/tasks/${task.taskId}/heartbeat`, {
      leaseId: task.leaseId,
      progress: { done: 1, total: 2, stage: "encode" },
      metrics: { imagesPerSecond: 12.5 },
      message: "warming up",
    });
    expect(await getJob(world, job.id)).toMatchObject({
      progress: { done: 1, total: 2, stage: "encode" },
    });
    await writeTokensFor(task, world.tiny);
    await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "encode" },
      metrics: { seconds: 0.5 },
    });
    // A finished job keeps the progress it ended with.
    expect(await getJob(world, job.id)).toMatchObject({
      status: "succeeded",
      progress: { done: 1, total: 2, stage: "encode" },
    });
    const res = await call(`/v1/jobs/${job.id}/events`, { key: world.apiKey });
    const { events } = (await res.json()) as {
      events: { id: number; type: string; data: Record<string, unknown> }[];
    };
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ["status", { status: "queued" }],
      ["status", { status: "running", attempt: 1, worker: "gpu-1" }],
      ["progress", { done: 1, total: 2, stage: "encode" }],
      ["metrics", { imagesPerSecond: 12.5 }],
      ["log", { message: "warming up" }],
      ["metrics", { seconds: 0.5 }],
      ["status", { status: "succeeded" }],
    ]);
    const ids = events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const later = await call(`/v1/jobs/${job.id}/events?after=${ids[4]}&limit=1`, {
      key: world.apiKey,
    });
    expect(await later.json()).toMatchObject({ events: [{ id: ids[5] }], next: ids[5] });
  });
});

describe("reconstruct and train jobs", () => {
  it("reconstruct takes the tokens of a succeeded encode job and checks each output image", async () => {
    const world = await newWorld();
    const encode = await createEncodeJob(world, 2);
    const [encodeTask] = await lease(world.workerKey);
    await writeTokensFor(encodeTask, world.tiny);
    await workerCall(world.workerKey, `/tasks/${encodeTask.taskId}/complete`, {
      leaseId: encodeTask.leaseId,
      result: { kind: "encode" },
    });
    const res = await call("/v1/jobs", {
      ...json({ kind: "reconstruct", tokenizer: world.tiny.hash, inputs: { job: encode.id } }),
      key: world.apiKey,
    });
    expect(res.status).toBe(202);
    const job = (await res.json()) as { id: string };
    const [task] = await lease(world.workerKey);
    if (task.payload.kind !== "reconstruct") throw new Error("kind");
    expect(task.payload.input).toEqual({
      tokens: `tenants/${world.id}/jobs/${encode.id}/tokens.rvqt`,
      recordCount: 2,
    });
    expect(task.payload.output.images).toEqual(
      [0, 1].map((i) => `tenants/${world.id}/jobs/${job.id}/images/${i}.png`),
    );
    const finish = () =>
      workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
        leaseId: task.leaseId,
        result: { kind: "reconstruct" },
      });
    await env.BUCKET.put(task.payload.output.images[0], IMAGES.png);
    await expectProblem(await finish(), 422, "invalid-result");
    await env.BUCKET.put(task.payload.output.images[1], IMAGES.png);
    expect((await finish()).status).toBe(200);
    expect(await getJob(world, job.id)).toMatchObject({
      status: "succeeded",
      result: {
        images: [
          { index: 0, bytes: IMAGES.png.length },
          { index: 1, bytes: IMAGES.png.length },
        ],
      },
    });
  });

  it("reconstruct refuses a job that has no tokens, or tokens of another tokenizer", async () => {
    const world = await newWorld();
    const pending = await createEncodeJob(world);
    await expectProblem(
      await call("/v1/jobs", {
        ...json({ kind: "reconstruct", tokenizer: world.tokenizerId, inputs: { job: pending.id } }),
        key: world.apiKey,
      }),
      422,
      "tokens-not-available",
    );
  });

  it("train registers the tokenizer the worker made, owned by the tenant", async () => {
    const world = await newWorld();
    const images = await uploadImages(world.apiKey, 2);
    const res = await call("/v1/jobs", {
      ...json({ kind: "train", inputs: { images }, parameters: { epochs: 1 } }),
      key: world.apiKey,
    });
    expect(res.status).toBe(202);
    const job = (await res.json()) as { id: string };
    const [task] = await lease(world.workerKey, { kinds: ["train"] });
    // No tokenizer named: the deployment's default (the world's) gives the VAE.
    expect(task.payload).toMatchObject({
      kind: "train",
      base: { manifestHash: world.tiny.hash },
      dataset: { count: 2 },
      parameters: { epochs: 1 },
      output: { checkpoints: `tenants/${world.id}/jobs/${job.id}/checkpoints/` },
    });
    const running = await getJob(world, job.id);
    const base = { id: world.tokenizerId, manifestHash: world.tiny.hash };
    // The base is named as such; the tokenizer is the one the job makes, none yet.
    expect(running).toMatchObject({
      baseTokenizer: base,
      tokenizer: null,
      inputs: { images },
      parameters: { epochs: 1 },
    });
    expect(Object.keys(running.inputs as object)).toEqual(["images"]);
    const progress = { done: 1, total: 1, stage: "exporting the tokenizer" };
    await workerCall(world.workerKey, `/tasks/${task.taskId}/heartbeat`, {
      leaseId: task.leaseId,
      progress,
    });
    const tiny = await tinyTokenizer("trained-for-tenant");
    // As the worker exports it: with its held-out evaluation.
    const manifest = parseManifest({ ...tiny.manifest, evaluation: EVALUATION });
    const trained = { ...tiny, manifest, hash: await manifestHash(manifest) };
    const finish = () =>
      workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
        leaseId: task.leaseId,
        result: { kind: "train", manifest: trained.manifest },
      });
    await expectProblem(await finish(), 422, "invalid-result");
    for (const [path, bytes] of trained.files) {
      await env.BUCKET.put(bucketKeys.tokenizerFile(trained.hash, path), bytes);
    }
    expect((await finish()).status).toBe(200);
    const done = await getJob(world, job.id);
    const tokenizer = done.tokenizer as { id: string; manifestHash: string };
    expect(tokenizer.manifestHash).toBe(trained.hash);
    // Said once, as its tokenizer beside its evaluation; the base and the last progress stay.
    expect(done).toMatchObject({ baseTokenizer: base, result: null, progress });
    expect(done.evaluation).toEqual(EVALUATION);
    const mine = await call(`/v1/tokenizers/${tokenizer.id}`, { key: world.apiKey });
    expect(await mine.json()).toMatchObject({
      owner: "tenant",
      status: "ready",
      evaluation: EVALUATION,
      manifest: { evaluation: EVALUATION },
    });
    const listed = (await (await call("/v1/tokenizers", { key: world.apiKey })).json()) as {
      tokenizers: { id: string; evaluation?: unknown }[];
    };
    const byId = new Map(listed.tokenizers.map((t) => [t.id, t.evaluation]));
    expect(byId.get(tokenizer.id)).toEqual(EVALUATION);
    // The base was registered without one, and shows none.
    expect(byId.has(world.tokenizerId)).toBe(true);
    expect(byId.get(world.tokenizerId)).toBeUndefined();
    const stranger = await newTenant();
    await expectProblem(
      await call(`/v1/tokenizers/${tokenizer.id}`, { key: stranger.apiKey }),
      404,
      "tokenizer-not-found",
    );
  });
});
