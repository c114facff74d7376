import { backoffDelay, retrying } from "@revq/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  EdgeClient,
  EdgeError,
  EdgeProtocolError,
  EdgeUnreachable,
} from "../../gpu-worker/src/client.ts";
import { createLogger } from "../../gpu-worker/src/log.ts";
import { EdgeStub, encodeTask } from "./worker-helpers/edge-stub.ts";

const FAST = { initialMs: 20, maxMs: 80 };

function client(url: string, lines: string[] = [], key = "rvq_wrk_test") {
  const log = createLogger({ format: "json", write: (line) => lines.push(line) });
  return new EdgeClient({
    baseUrl: url,
    workerKey: key,
    log,
    backoff: FAST,
    requestTimeoutMs: 2000,
  });
}

describe("backoff", () => {
  it("doubles from the initial wait up to the cap, jittered within the upper half", () => {
    const policy = { initialMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 0.999999)).toBeCloseTo(100, 3);
    expect(backoffDelay(3, policy, () => 0)).toBe(400);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
    expect(backoffDelay(1000, policy, () => 0.5)).toBe(750);
  });

  it("stops retrying at the deadline with the last error", async () => {
    let tries = 0;
    const started = Date.now();
    await expect(
      retrying(
        async () => {
          tries++;
          throw new Error(`try ${tries}`);
        },
        { retryable: () => true, policy: FAST, deadline: Date.now() + 300 },
      ),
    ).rejects.toThrow(/^try \d+$/);
    expect(tries).toBeGreaterThan(2);
    expect(Date.now() - started).toBeLessThan(400);
  });
});

describe("EdgeClient", () => {
  let edge: EdgeStub;
  beforeEach(() => {
    edge = new EdgeStub();
    return edge.start();
  });
  afterEach(() => edge.stop());

  it("leases with the worker key and returns validated tasks", async () => {
    const task = encodeTask();
    edge.add(task);
    const answer = await client(edge.url).lease({
      kinds: ["encode"],
      max: 2,
      waitSeconds: 0,
      worker: "w1",
    });
    expect(answer.leaseSeconds).toBe(edge.leaseSeconds);
    expect(answer.tasks.map((t) => t.taskId)).toEqual([task.taskId]);
    expect(edge.calls[0].body).toEqual({ kinds: ["encode"], max: 2, waitSeconds: 0, worker: "w1" });
  });

  it("retries 5xx answers with backoff and logs each retry", async () => {
    let failures = 2;
    edge.override = () => (failures-- > 0 ? [503, { code: "unavailable" }] : undefined);
    const lines: string[] = [];
    const answer = await client(edge.url, lines).lease({
      kinds: ["encode"],
      max: 1,
      waitSeconds: 0,
    });
    expect(answer.tasks).toEqual([]);
    expect(edge.callsTo("/lease")).toHaveLength(3);
    const retries = lines.map((l) => JSON.parse(l)).filter((l) => l.msg.includes("retrying"));
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
    expect(retries[0].error).toMatchObject({ name: "EdgeError", code: "unavailable" });
  });

  it("throws a problem answer at once, with its code", async () => {
    edge.lost.add("tsk_x");
    const call = client(edge.url).heartbeat("tsk_x", { leaseId: "lse_x" });
    await expect(call).rejects.toBeInstanceOf(EdgeError);
    await expect(call).rejects.toMatchObject({ status: 409, code: "lease-lost" });
    expect(edge.callsTo("/heartbeat")).toHaveLength(1);
  });

  it("does not retry a key the edge refuses", async () => {
    const call = client(edge.url, [], "rvq_wrk_wrong").lease({
      kinds: ["encode"],
      max: 1,
      waitSeconds: 0,
    });
    await expect(call).rejects.toMatchObject({ status: 401, code: "invalid-key" });
    expect(edge.calls).toHaveLength(1);
  });

  it("refuses an answer outside the protocol", async () => {
    edge.override = () => [200, { tasks: [{ taskId: 1 }], leaseSeconds: 60 }];
    await expect(
      client(edge.url).lease({ kinds: ["encode"], max: 1, waitSeconds: 0 }),
    ).rejects.toThrow(EdgeProtocolError);
  });

  it("keeps trying an unreachable edge until the deadline", async () => {
    await edge.stop();
    const started = Date.now();
    await expect(
      client(edge.url).complete(
        "tsk_1",
        { leaseId: "lse_1", result: { kind: "encode" } },
        { deadline: Date.now() + 400 },
      ),
    ).rejects.toThrow(EdgeUnreachable);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it("reaches an edge that comes back while it retries", async () => {
    await edge.stop();
    setTimeout(() => void edge.restart(), 300);
    const answer = await client(edge.url).fail(
      "tsk_2",
      { leaseId: "lse_2", retryable: true, error: { code: "x", message: "y" } },
      { deadline: Date.now() + 5000 },
    );
    expect(answer.status).toBe("queued");
  });

  it("ends a long-poll as soon as its signal is aborted", async () => {
    const controller = new AbortController();
    const call = client(edge.url).lease(
      { kinds: ["encode"], max: 1, waitSeconds: 30 },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error("shutting down")), 100);
    const started = Date.now();
    await expect(call).rejects.toThrow("shutting down");
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
