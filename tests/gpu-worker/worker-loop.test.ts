import type { LeasedTask } from "@revq/shared";
import { sleep } from "@revq/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EdgeClient, EdgeError } from "../../gpu-worker/src/client.ts";
import { createLogger } from "../../gpu-worker/src/log.ts";
import { TaskError } from "../../gpu-worker/src/task-error.ts";
import { type TaskContext, type TaskRunner, Worker } from "../../gpu-worker/src/worker.ts";
import { EdgeStub, encodeTask } from "./worker-helpers/edge-stub.ts";
import { MemoryBucket } from "./worker-helpers/memory-bucket.ts";

let edge: EdgeStub;
let lines: string[];

beforeEach(async () => {
  edge = new EdgeStub();
  edge.leaseSeconds = 1;
  lines = [];
  await edge.start();
});
afterEach(() => edge.stop());

function worker(run: TaskRunner, options: { tasksHeld?: number; graceMs?: number } = {}) {
  const log = createLogger({ format: "json", write: (line) => lines.push(line) });
  const client = new EdgeClient({
    baseUrl: edge.url,
    workerKey: "rvq_wrk_test",
    log,
    backoff: { initialMs: 20, maxMs: 100 },
  });
  return new Worker({
    client,
    run,
    bucketFor: () => new MemoryBucket(),
    log,
    name: "w-test",
    kinds: ["encode", "reconstruct"],
    tasksHeld: options.tasksHeld ?? 2,
    leaseWaitSeconds: 1,
    graceMs: options.graceMs ?? 2000,
  });
}

/** Waits until `check` holds, polling. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await sleep(10);
  }
}

/** Resolves when the signal aborts: a task that runs until it is told to stop. */
const untilStopped = (context: TaskContext) =>
  new Promise<never>((_, reject) =>
    context.signal.addEventListener("abort", () => reject(context.signal.reason)),
  );

describe("Worker", () => {
  it("runs leased tasks and completes each with its metrics, holding at most tasksHeld", async () => {
    let running = 0;
    let most = 0;
    const w = worker(
      async (task) => {
        running++;
        most = Math.max(most, running);
        await sleep(50);
        running--;
        return { result: { kind: "encode" }, metrics: { images: Number(task.taskId.slice(4)) } };
      },
      { tasksHeld: 2 },
    );
    const tasks = Array.from({ length: 5 }, () => encodeTask());
    for (const t of tasks) edge.add(t);
    const done = w.run();
    await until(() => edge.callsTo("/complete").length === 5);
    w.stop();
    await done;
    expect(most).toBe(2);
    const completes = edge.callsTo("/complete");
    expect(completes.map((c) => c.path).sort()).toEqual(
      tasks.map((t) => `/v1/worker/tasks/${t.taskId}/complete`).sort(),
    );
    const first = completes.find((c) => c.path.includes(`/${tasks[0].taskId}/`));
    expect(first?.body).toEqual({
      leaseId: tasks[0].leaseId,
      result: { kind: "encode" },
      metrics: { images: Number(tasks[0].taskId.slice(4)) },
    });
    for (const call of edge.callsTo("/lease")) expect(call.body.max).toBeLessThanOrEqual(2);
    expect(edge.callsTo("/fail")).toEqual([]);
  });

  it("renews the lease every third of it, reporting the latest progress", async () => {
    const task = encodeTask();
    edge.add(task);
    const w = worker(async (_, context) => {
      context.progress({ done: 1, total: 4, stage: "encode" });
      await sleep(1200);
      return { result: { kind: "encode" } };
    });
    const done = w.run();
    await until(() => edge.callsTo("/complete").length === 1);
    w.stop();
    await done;
    const beats = edge.callsTo("/heartbeat");
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats[0].body).toEqual({
      leaseId: task.leaseId,
      progress: { done: 1, total: 4, stage: "encode" },
    });
    const gaps = beats.slice(1).map((b, i) => b.at - beats[i].at);
    for (const gap of gaps) expect(gap).toBeLessThan(500);
  });

  it("sends every metric set once, in order, with the heartbeats", async () => {
    const task = encodeTask();
    edge.add(task);
    const w = worker(async (_, context) => {
      context.metrics({ epoch: 1, loss: 0.5 });
      context.metrics({ epoch: 2, loss: 0.25 });
      await sleep(300);
      context.metrics({ epoch: 3, loss: 0.125 });
      await sleep(300);
      return { result: { kind: "encode" } };
    });
    const done = w.run();
    await until(() => edge.callsTo("/complete").length === 1);
    w.stop();
    await done;
    const sent = edge
      .callsTo("/heartbeat")
      .map((b) => (b.body as { metrics?: Record<string, number> }).metrics)
      .filter((m) => m !== undefined);
    expect(sent).toEqual([
      { epoch: 1, loss: 0.5 },
      { epoch: 2, loss: 0.25 },
      { epoch: 3, loss: 0.125 },
    ]);
  });

  for (const [what, steer] of [
    ["the job was cancelled", (t: LeasedTask) => edge.cancelled.add(t.taskId)],
    ["the lease was lost", (t: LeasedTask) => edge.lost.add(t.taskId)],
  ] as const) {
    it(`stops a task, reporting nothing, when ${what}`, async () => {
      const task = encodeTask();
      steer(task);
      edge.add(task);
      let reason: unknown;
      const w = worker(async (_, context) => {
        try {
          return await untilStopped(context);
        } catch (error) {
          reason = error;
          throw error;
        }
      });
      const done = w.run();
      await until(() => reason !== undefined);
      await until(() => w.heldCount === 0);
      w.stop();
      await done;
      expect(reason).toMatchObject({
        name: "TaskStopped",
        why: what.includes("cancelled") ? "cancelled" : "lease-lost",
      });
      expect(edge.callsTo("/complete")).toEqual([]);
      expect(edge.callsTo("/fail")).toEqual([]);
    });
  }

  it("stops a task, reporting nothing, when any of its own edge calls says the job was cancelled", async () => {
    const task = encodeTask();
    edge.add(task);
    const w = worker(async () => {
      // As a bucket URL request answers for a cancelled job, before any heartbeat could.
      throw new EdgeError(409, "job-cancelled", "The job of the task was cancelled.");
    });
    const done = w.run();
    await until(() => lines.some((l) => l.includes('"task stopped"')));
    w.stop();
    await done;
    expect(lines.find((l) => l.includes('"task stopped"'))).toContain('"why":"cancelled"');
    expect(edge.callsTo("/fail")).toEqual([]);
    expect(edge.callsTo("/complete")).toEqual([]);
  });

  it("fails a task with the error's code and retryability, and keeps serving", async () => {
    const bad = encodeTask();
    const crash = encodeTask();
    const good = encodeTask();
    for (const t of [bad, crash, good]) edge.add(t);
    const w = worker(
      async (task) => {
        if (task === bad || task.taskId === bad.taskId) {
          throw new TaskError("image-undecodable", "image 0 (img_1) is not a PNG", false);
        }
        if (task.taskId === crash.taskId) throw new RangeError("out of memory");
        return { result: { kind: "encode" } };
      },
      { tasksHeld: 1 },
    );
    const done = w.run();
    await until(() => edge.callsTo("/complete").length === 1);
    w.stop();
    await done;
    const fails = edge.callsTo("/fail").map((c) => c.body);
    expect(fails).toEqual([
      {
        leaseId: bad.leaseId,
        retryable: false,
        error: { code: "image-undecodable", message: "image 0 (img_1) is not a PNG" },
      },
      {
        leaseId: crash.leaseId,
        retryable: true,
        error: { code: "internal", message: "out of memory" },
      },
    ]);
  });

  it("sends the figures of a tokenizer that missed its thresholds with the failure", async () => {
    const task = encodeTask();
    edge.add(task);
    const evaluation = {
      heldOut: { latents: 2, images: 0 },
      latentMse: { quantized: 0.1, rectified: 0.2 },
      usage: { min: 0.5, mean: 0.6 },
      bitsPerImage: 512,
    };
    const w = worker(async () => {
      throw new TaskError("evaluation-below-threshold", "missed", false, { evaluation });
    });
    const done = w.run();
    await until(() => edge.callsTo("/fail").length === 1);
    w.stop();
    await done;
    expect(edge.callsTo("/fail")[0].body).toMatchObject({
      error: { code: "evaluation-below-threshold", message: "missed", evaluation },
    });
  });

  it("on stop, leases no more, lets a short task finish and releases a long one", async () => {
    const short = encodeTask();
    const long = encodeTask();
    edge.add(short);
    edge.add(long);
    const w = worker(
      async (task, context) => {
        if (task.taskId === short.taskId) {
          await sleep(200);
          return { result: { kind: "encode" } };
        }
        return untilStopped(context);
      },
      { tasksHeld: 2, graceMs: 600 },
    );
    const done = w.run();
    await until(() => w.heldCount === 2);
    const stoppedAt = Date.now();
    w.stop();
    edge.add(encodeTask());
    await done;
    const elapsed = Date.now() - stoppedAt;
    expect(elapsed).toBeGreaterThanOrEqual(550);
    expect(elapsed).toBeLessThan(1500);
    expect(edge.callsTo("/complete").map((c) => c.body.leaseId)).toEqual([short.leaseId]);
    expect(edge.callsTo("/release")).toMatchObject([
      { path: `/v1/worker/tasks/${long.taskId}/release`, body: { leaseId: long.leaseId } },
    ]);
    expect(edge.callsTo("/fail")).toEqual([]);
    expect(edge.queue).toHaveLength(1);
  });

  it("a second stop ends the grace period at once", async () => {
    edge.add(encodeTask());
    const w = worker(untilStoppedRunner, { graceMs: 60_000 });
    const done = w.run();
    await until(() => w.heldCount === 1);
    w.stop();
    await sleep(50);
    w.stop();
    await done;
    expect(edge.callsTo("/release")).toHaveLength(1);
  });

  it("waits out an edge that went away and takes work again when it is back", async () => {
    const w = worker(async () => ({ result: { kind: "encode" } }));
    const done = w.run();
    await until(() => edge.callsTo("/lease").length >= 1);
    await edge.stop();
    await sleep(400);
    const task = encodeTask();
    edge.add(task);
    await edge.restart();
    await until(() => edge.callsTo("/complete").length === 1);
    w.stop();
    await done;
    expect(edge.callsTo("/complete")[0].body.leaseId).toBe(task.leaseId);
    expect(lines.some((l) => l.includes("edge call failed; retrying"))).toBe(true);
  });

  it("stops with an error when the edge refuses its key", async () => {
    const log = createLogger({ format: "json", write: () => undefined });
    const client = new EdgeClient({ baseUrl: edge.url, workerKey: "rvq_wrk_revoked", log });
    const w = new Worker({
      client,
      run: untilStoppedRunner,
      bucketFor: () => new MemoryBucket(),
      log,
      name: "w",
      kinds: ["encode"],
      tasksHeld: 1,
      leaseWaitSeconds: 1,
      graceMs: 0,
    });
    await expect(w.run()).rejects.toMatchObject({ status: 401 });
  });
});

function untilStoppedRunner(_: LeasedTask, context: TaskContext) {
  return untilStopped(context);
}
