import { env } from "cloudflare:workers";
import { writeTokenStream } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { pollDelayMs } from "../../edge/src/services/queue/lease-poll.ts";
import { sweep } from "../../edge/src/services/sweep.ts";
import {
  createEncodeJob,
  endBackoff,
  expireLease,
  getJob,
  lease,
  newWorld,
  workerCall,
  writeTokensFor,
} from "./fixtures/jobs.ts";
import { call, expectProblem } from "./helpers.ts";

const complete = (key: string, taskId: string, leaseId: string) =>
  workerCall(key, `/tasks/${taskId}/complete`, { leaseId, result: { kind: "encode" } });
const fail = (key: string, taskId: string, leaseId: string, retryable: boolean) =>
  workerCall(key, `/tasks/${taskId}/fail`, {
    leaseId,
    retryable,
    error: { code: "oom", message: "out of memory" },
  });
const release = (key: string, taskId: string, leaseId: string) =>
  workerCall(key, `/tasks/${taskId}/release`, { leaseId });

describe("POST /v1/worker/lease", () => {
  it("gives each task to exactly one of many racing workers", async () => {
    const world = await newWorld();
    const jobs = await Promise.all(Array.from({ length: 12 }, () => createEncodeJob(world)));
    const calls = Array.from({ length: 30 }, (_, i) =>
      lease(world.workerKey, { max: 1 + (i % 3) }),
    );
    const leased = (await Promise.all(calls)).flat();
    const ids = leased.map((t) => t.taskId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(leased.map((t) => t.jobId))).toEqual(new Set(jobs.map((j) => j.id)));
    expect(new Set(leased.map((t) => t.leaseId)).size).toBe(leased.length);
    expect(await lease(world.workerKey, { max: 16 })).toEqual([]);
  });

  it("takes only the kinds asked for, up to max, oldest first", async () => {
    const world = await newWorld();
    const first = await createEncodeJob(world);
    const second = await createEncodeJob(world);
    expect(await lease(world.workerKey, { kinds: ["train"] })).toEqual([]);
    const [task] = await lease(world.workerKey, { kinds: ["encode"], max: 1 });
    expect(task).toMatchObject({ jobId: first.id, attempt: 1, maxAttempts: 5, kind: "encode" });
    const [next] = await lease(world.workerKey, { max: 5 });
    expect(next.jobId).toBe(second.id);
  });

  it("long-polls until a task arrives, and no longer than asked", async () => {
    const world = await newWorld();
    const started = Date.now();
    expect(await lease(world.workerKey, { waitSeconds: 0.6 })).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);

    const waiting = lease(world.workerKey, { waitSeconds: 10 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const job = await createEncodeJob(world);
    const [task] = await waiting;
    expect(task.jobId).toBe(job.id);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("looks again within tens of milliseconds at first, then at most four times a second", () => {
    const delays = Array.from({ length: 8 }, (_, i) => pollDelayMs(i + 1));
    expect(delays).toEqual([25, 50, 100, 200, 250, 250, 250, 250]);
    // A quiet 20 s long-poll: about 80 checks, where a fixed 500 ms made 40 (and a 25 ms one 800).
    let checks = 1;
    for (let waited = 0; waited < 20_000; checks++) waited += pollDelayMs(checks);
    expect(checks).toBeLessThanOrEqual(85);
  });

  it("fails a task whose payload it cannot read for good, and leases the others", async () => {
    const world = await newWorld();
    const old = await createEncodeJob(world);
    const good = await createEncodeJob(world);
    // As an earlier release queued it: no `tokenizer`, an `images` list of bare ids.
    await env.DB.prepare("UPDATE tasks SET payload = ? WHERE job_id = ?")
      .bind(JSON.stringify({ kind: "encode", images: ["img_1"] }), old.id)
      .run();
    const leased = await lease(world.workerKey, { max: 5 });
    expect(leased.map((t) => t.jobId)).toEqual([good.id]);
    const failed = await getJob(world, old.id);
    expect(failed).toMatchObject({ status: "failed", error: { code: "payload-unreadable" } });
    expect(await lease(world.workerKey, { max: 5 })).toEqual([]);
  });

  it("validates the request and refuses api keys", async () => {
    const world = await newWorld();
    await expectProblem(
      await workerCall(world.workerKey, "/lease", { max: 0 }),
      400,
      "invalid-request",
    );
    await expectProblem(
      await workerCall(world.workerKey, "/lease", { kinds: ["paint"] }),
      400,
      "invalid-request",
    );
    await expectProblem(await workerCall(world.apiKey, "/lease", {}), 403, "wrong-key-kind");
    await expectProblem(await workerCall("rvq_wrk_nope", "/lease", {}), 401, "invalid-key");
  });
});

describe("leases", () => {
  it("a heartbeat renews the lease", async () => {
    const world = await newWorld();
    await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    const res = await workerCall(world.workerKey, `/tasks/${task.taskId}/heartbeat`, {
      leaseId: task.leaseId,
    });
    const body = (await res.json()) as { cancelled: boolean; leaseExpiresAt: string };
    expect(body.cancelled).toBe(false);
    expect(Date.parse(body.leaseExpiresAt)).toBeGreaterThanOrEqual(Date.parse(task.leaseExpiresAt));
  });

  it("an expired lease goes back to the queue; the old holder is refused, the new one completes", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const [first] = await lease(world.workerKey, { worker: "a" });
    await expireLease(first.taskId);
    const [second] = await lease(world.workerKey, { worker: "b" });
    expect(second).toMatchObject({ taskId: first.taskId, attempt: 2 });
    expect(second.leaseId).not.toBe(first.leaseId);

    await writeTokensFor(first, world.tiny);
    await expectProblem(
      await workerCall(world.workerKey, `/tasks/${first.taskId}/heartbeat`, {
        leaseId: first.leaseId,
      }),
      409,
      "lease-lost",
    );
    await expectProblem(
      await complete(world.workerKey, first.taskId, first.leaseId),
      409,
      "lease-lost",
    );
    await expectProblem(
      await fail(world.workerKey, first.taskId, first.leaseId, true),
      409,
      "lease-lost",
    );
    expect((await complete(world.workerKey, second.taskId, second.leaseId)).status).toBe(200);
    expect(await getJob(world, job.id)).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("the cron sweep returns expired leases, and fails tasks out of attempts", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    await env.DB.prepare("UPDATE tasks SET max_attempts = 2 WHERE job_id = ?").bind(job.id).run();
    const [first] = await lease(world.workerKey);
    await expireLease(first.taskId);
    expect((await sweep(env, Date.now())).expiredLeases).toBeGreaterThanOrEqual(1);
    expect((await getJob(world, job.id)).status).toBe("queued");
    const [second] = await lease(world.workerKey);
    await expireLease(second.taskId);
    await sweep(env, Date.now());
    expect(await getJob(world, job.id)).toMatchObject({
      status: "failed",
      error: { code: "lease-expired" },
    });
    expect(await lease(world.workerKey)).toEqual([]);
  });
});

describe("complete", () => {
  it("is idempotent for the holder and checks the outputs first", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world, 3);
    const [task] = await lease(world.workerKey);
    await expectProblem(
      await complete(world.workerKey, task.taskId, task.leaseId),
      422,
      "invalid-result",
    );
    await writeTokensFor(task, world.tiny);
    const first = await complete(world.workerKey, task.taskId, task.leaseId);
    expect(await first.json()).toEqual({ taskId: task.taskId, jobId: job.id, status: "succeeded" });
    const repeat = await complete(world.workerKey, task.taskId, task.leaseId);
    expect(repeat.status).toBe(200);
    const done = await getJob(world, job.id);
    expect(done).toMatchObject({
      status: "succeeded",
      result: {
        tokens: {
          recordCount: 3,
          tokensPerRecord: 4,
          codesPerGroup: 4,
          groups: 4,
          tokenizerHash: world.tiny.hash,
        },
      },
    });
    await expectProblem(
      await complete(world.workerKey, task.taskId, "lse_other"),
      409,
      "lease-lost",
    );
    await expectProblem(
      await fail(world.workerKey, task.taskId, task.leaseId, true),
      409,
      "lease-lost",
    );
  });

  it("refuses outputs that do not match the task", async () => {
    const world = await newWorld();
    await createEncodeJob(world, 2);
    const [task] = await lease(world.workerKey);
    if (task.payload.kind !== "encode") throw new Error("kind");
    await writeTokensFor(task, world.tiny, 1);
    const wrongCount = await expectProblem(
      await complete(world.workerKey, task.taskId, task.leaseId),
      422,
      "invalid-result",
    );
    expect(wrongCount.detail).toContain("1 records for 2 images");
    const otherTokenizer = writeTokenStream(
      { tokenizerHash: "ab".repeat(32), tokensPerRecord: 4, codesPerGroup: 4, groups: 4 },
      new Uint32Array(8),
    );
    await env.BUCKET.put(task.payload.output.tokens, otherTokenizer);
    const wrongHash = await expectProblem(
      await complete(world.workerKey, task.taskId, task.leaseId),
      422,
      "invalid-result",
    );
    expect(wrongHash.detail).toContain("names tokenizer");
    await env.BUCKET.put(
      task.payload.output.tokens,
      new TextEncoder().encode("not a token stream"),
    );
    await expectProblem(
      await complete(world.workerKey, task.taskId, task.leaseId),
      422,
      "invalid-result",
    );
    await expectProblem(
      await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
        leaseId: task.leaseId,
        result: { kind: "train", manifest: {} },
      }),
      422,
      "invalid-result",
    );
  });

  it("another tenant's worker cannot touch the task", async () => {
    const world = await newWorld();
    const other = await newWorld();
    await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    await expectProblem(
      await complete(other.workerKey, task.taskId, task.leaseId),
      404,
      "task-not-found",
    );
  });
});

describe("fail", () => {
  it("a retryable failure goes back to the queue after a backoff, until attempts run out", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    await env.DB.prepare("UPDATE tasks SET max_attempts = 3 WHERE job_id = ?").bind(job.id).run();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [task] = await lease(world.workerKey);
      expect(task.attempt).toBe(attempt);
      const before = Date.now();
      const res = await fail(world.workerKey, task.taskId, task.leaseId, true);
      const body = (await res.json()) as { status: string; retryAt: string | null };
      if (attempt < 3) {
        expect(body.status).toBe("queued");
        // 10 s doubling, ±20 %.
        const delay = Date.parse(body.retryAt as string) - before;
        expect(delay).toBeGreaterThanOrEqual(0.8 * 10_000 * 2 ** (attempt - 1) - 50);
        expect(delay).toBeLessThanOrEqual(1.2 * 10_000 * 2 ** (attempt - 1) + 50);
        expect(await lease(world.workerKey)).toEqual([]);
        expect((await getJob(world, job.id)).status).toBe("queued");
        await endBackoff(task.taskId);
      } else {
        expect(body).toMatchObject({ status: "failed", retryAt: null });
      }
    }
    expect(await getJob(world, job.id)).toMatchObject({
      status: "failed",
      attempts: 3,
      error: { code: "oom", message: "out of memory" },
    });
  });

  it("a non-retryable failure fails the job at once", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    const res = await fail(world.workerKey, task.taskId, task.leaseId, false);
    expect(await res.json()).toMatchObject({ status: "failed", attempt: 1 });
    expect((await getJob(world, job.id)).status).toBe("failed");
  });
});

describe("release", () => {
  it("queues the task again at once, without counting the attempt, and refuses its old holder", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const [first] = await lease(world.workerKey, { worker: "a" });
    const res = await release(world.workerKey, first.taskId, first.leaseId);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ taskId: first.taskId, jobId: job.id, status: "queued" });
    expect(await getJob(world, job.id)).toMatchObject({ status: "queued", attempts: 0 });

    const [second] = await lease(world.workerKey, { worker: "b" });
    expect(second).toMatchObject({ taskId: first.taskId, attempt: 1 });
    expect(second.leaseId).not.toBe(first.leaseId);
    await writeTokensFor(first, world.tiny);
    for (const res of [
      await workerCall(world.workerKey, `/tasks/${first.taskId}/heartbeat`, {
        leaseId: first.leaseId,
      }),
      await complete(world.workerKey, first.taskId, first.leaseId),
      await fail(world.workerKey, first.taskId, first.leaseId, true),
      await release(world.workerKey, first.taskId, first.leaseId),
    ]) {
      await expectProblem(res, 409, "lease-lost");
    }
    expect((await complete(world.workerKey, second.taskId, second.leaseId)).status).toBe(200);
    expect(await getJob(world, job.id)).toMatchObject({ status: "succeeded", attempts: 1 });

    const events = await call(`/v1/jobs/${job.id}/events`, { key: world.apiKey });
    const statuses = ((await events.json()) as { events: { type: string; data: unknown }[] }).events
      .filter((e) => e.type === "status")
      .map((e) => e.data);
    expect(statuses).toEqual([
      { status: "queued" },
      { status: "running", attempt: 1, worker: "a" },
      { status: "queued", reason: "released", attempt: 1, worker: "a" },
      { status: "running", attempt: 1, worker: "b" },
      { status: "succeeded" },
    ]);
  });

  it("hands the task to a waiting long-poll within a poll interval", async () => {
    const world = await newWorld();
    await createEncodeJob(world);
    const [held] = await lease(world.workerKey);
    const waiting = lease(world.workerKey, { waitSeconds: 10 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const releasedAt = Date.now();
    expect((await release(world.workerKey, held.taskId, held.leaseId)).status).toBe(200);
    const [task] = await waiting;
    expect(task.taskId).toBe(held.taskId);
    expect(Date.now() - releasedAt).toBeLessThan(1000);
  });

  it("is not taken back by a long-poll its worker began before, only by a later call", async () => {
    const world = await newWorld();
    await createEncodeJob(world);
    const [held] = await lease(world.workerKey, { worker: "a" });
    // The worker's own long-poll, abandoned when it stopped, may still be running on the edge.
    const stale = lease(world.workerKey, { worker: "a", waitSeconds: 1.5 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await release(world.workerKey, held.taskId, held.leaseId)).status).toBe(200);
    expect(await stale).toEqual([]);
    expect(await lease(world.workerKey, { worker: "a" })).toMatchObject([
      { taskId: held.taskId, attempt: 1 },
    ]);
  });

  it("refuses other leases, cancelled jobs, other tenants' workers and bad bodies", async () => {
    const world = await newWorld();
    const other = await newWorld();
    const job = await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    await expectProblem(
      await release(world.workerKey, task.taskId, "lse_other"),
      409,
      "lease-lost",
    );
    await expectProblem(
      await release(other.workerKey, task.taskId, task.leaseId),
      404,
      "task-not-found",
    );
    const invalid = await expectProblem(
      await workerCall(world.workerKey, `/tasks/${task.taskId}/release`, {}),
      400,
      "invalid-request",
    );
    expect(invalid.detail).toContain("leaseId");
    await expectProblem(
      await release(world.apiKey, task.taskId, task.leaseId),
      403,
      "wrong-key-kind",
    );
    expect(
      (await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: world.apiKey })).status,
    ).toBe(200);
    await expectProblem(
      await release(world.workerKey, task.taskId, task.leaseId),
      409,
      "job-cancelled",
    );
    expect(await getJob(world, job.id)).toMatchObject({ status: "cancelled", attempts: 1 });
  });
});
