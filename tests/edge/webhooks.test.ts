import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { LeasedTask } from "@revq/shared";
import { eq } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../edge/src/app.ts";
import { configOf } from "../../edge/src/config.ts";
import { database } from "../../edge/src/db/client.ts";
import {
  jobs,
  webhookAttempts,
  webhookDeliveries,
  webhookEndpoints,
} from "../../edge/src/db/schema.ts";
import type { Env } from "../../edge/src/env.ts";
import { newId } from "../../edge/src/services/ids.ts";
import { cancelJob } from "../../edge/src/services/jobs/cancel.ts";
import { completeTask } from "../../edge/src/services/queue/complete.ts";
import { requeueExpired } from "../../edge/src/services/queue/expiry.ts";
import { failTask } from "../../edge/src/services/queue/fail.ts";
import {
  attemptDelivery,
  type DeliveryRow,
  LOST_AFTER_MS,
  MAX_ATTEMPTS,
  MAX_WEBHOOK_ENDPOINTS,
  RETRY_DELAYS_S,
  redeliver,
  requeueLostDeliveries,
} from "../../edge/src/services/webhooks/deliveries.ts";
import {
  newSigningSecret,
  openSecret,
  resealSecrets,
  sealSecret,
} from "../../edge/src/services/webhooks/secret.ts";
import { checkWebhookTarget, hostProblem } from "../../edge/src/services/webhooks/target.ts";
import {
  createEncodeJob,
  expireLease,
  getJob,
  lease,
  newWorld,
  uploadImages,
  type World,
  workerCall,
  writeTokensFor,
} from "./fixtures/jobs.ts";
import { EVALUATION } from "./fixtures/tokenizer.ts";
import { call, expectProblem, json } from "./helpers.ts";

type Received = { path: string; headers: Record<string, string>; body: string };
type Delivery = {
  id: string;
  status: string;
  eventType: string;
  messageId: string;
  attempts: { attempt: number; statusCode: number | null; error: string | null }[];
};

const receiver = env.WEBHOOK_RECEIVER;

async function received(box: string): Promise<Received[]> {
  return (await (await fetch(`${receiver}/received/${box}`)).json()) as Received[];
}

/** Waits for the queue consumer (local queues deliver within about a second). */
async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function registerEndpoint(world: World, url: string, events?: string[]) {
  const res = await call("/v1/webhooks", {
    ...json({ url, ...(events ? { events } : {}) }),
    key: world.apiKey,
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; secret: string; events: string[] };
}

async function finishJob(
  world: World,
  outcome: "succeed" | "fail",
  extra: Record<string, unknown> = {},
) {
  const job = (await createEncodeJob(world, 1, extra)) as { id: string; webhookSecret?: string };
  const [task] = await lease(world.workerKey);
  if (outcome === "succeed") {
    await writeTokensFor(task, world.tiny);
    await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "encode" },
    });
  } else {
    await workerCall(world.workerKey, `/tasks/${task.taskId}/fail`, {
      leaseId: task.leaseId,
      retryable: false,
      error: { code: "bad-image", message: "cannot decode" },
    });
  }
  return job;
}

describe("webhook endpoints", () => {
  it("registers (secret shown once), lists, deletes, and validates", async () => {
    const world = await newWorld();
    const endpoint = await registerEndpoint(world, `${receiver}/ok/list`, ["job.succeeded"]);
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const listed = (await (await call("/v1/webhooks", { key: world.apiKey })).json()) as {
      webhooks: object[];
    };
    expect(listed.webhooks).toEqual([
      {
        id: endpoint.id,
        url: `${receiver}/ok/list`,
        events: ["job.succeeded"],
        createdAt: expect.any(String),
      },
    ]);
    await expectProblem(
      await call("/v1/webhooks", {
        ...json({ url: "https://example.com", events: ["job.exploded"] }),
        key: world.apiKey,
      }),
      400,
      "invalid-request",
    );
    const other = await newWorld();
    await expectProblem(
      await call(`/v1/webhooks/${endpoint.id}`, { method: "DELETE", key: other.apiKey }),
      404,
      "webhook-not-found",
    );
    expect(
      (await call(`/v1/webhooks/${endpoint.id}`, { method: "DELETE", key: world.apiKey })).status,
    ).toBe(204);
    expect(
      ((await (await call("/v1/webhooks", { key: world.apiKey })).json()) as { webhooks: object[] })
        .webhooks,
    ).toEqual([]);
  });

  it("refuses private, link-local and (unless allowed) loopback targets", async () => {
    const world = await newWorld();
    for (const url of [
      "http://10.0.0.5/hook",
      "http://169.254.169.254/latest",
      "http://[fd00::1]/x",
      "http://printer.local/x",
      "http://[::ffff:192.168.1.1]/x",
      "http://metadata.google.internal./computeMetadata/v1/",
      "http://[64:ff9b::a9fe:a9fe]/x",
      "http://[2002:a00:1::]/x",
    ]) {
      await expectProblem(
        await call("/v1/webhooks", { ...json({ url }), key: world.apiKey }),
        422,
        "webhook-target-forbidden",
      );
    }
    await expectProblem(
      await call("/v1/jobs", {
        ...json({
          kind: "encode",
          tokenizer: world.tokenizerId,
          inputs: { images: ["img_x"] },
          webhookUrl: "http://192.168.0.1/",
        }),
        key: world.apiKey,
      }),
      422,
      "webhook-target-forbidden",
    );
  });

  it("allows loopback only when local development says so", () => {
    expect(() => checkWebhookTarget("http://127.0.0.1:8787/hook", false)).toThrow(/loopback/);
    expect(checkWebhookTarget("http://127.0.0.1:8787/hook", true).port).toBe("8787");
    expect(() => checkWebhookTarget("http://10.1.2.3/hook", true)).toThrow(/private/);
    expect(() => checkWebhookTarget("ftp://example.com/", true)).toThrow(/http or https/);
    expect(() => checkWebhookTarget("https://user:pw@example.com/", true)).toThrow(/credentials/);
  });

  it("judges hosts by address class", () => {
    const host = (url: string) => hostProblem(new URL(url).hostname);
    expect(host("http://127.0.0.1/")).toBe("loopback");
    expect(host("http://2130706433/")).toBe("loopback");
    expect(host("http://localhost/")).toBe("loopback");
    expect(host("http://[::1]/")).toBe("loopback");
    expect(host("http://[::ffff:127.0.0.1]/")).toBe("loopback");
    expect(host("http://172.20.1.1/")).toBe("private");
    expect(host("http://100.64.0.1/")).toBe("private");
    expect(host("http://0.0.0.0/")).toBe("private");
    expect(host("http://[fe80::1]/")).toBe("private");
    expect(host("http://intranet/")).toBe("private");
    expect(host("https://hooks.example.com/")).toBeUndefined();
    expect(host("http://8.8.8.8/")).toBeUndefined();
    expect(host("http://[2606:4700::1111]/")).toBeUndefined();
    expect(host("http://[::ffff:8.8.8.8]/")).toBeUndefined();
  });

  it("normalises trailing dots and refuses every special-use IPv6 range", () => {
    const host = (url: string) => hostProblem(new URL(url).hostname);
    for (const [url, problem] of [
      // Fully qualified names: the trailing dot names the same host.
      ["http://localhost./", "loopback"],
      ["http://api.localhost./", "loopback"],
      ["http://127.0.0.1./", "loopback"],
      ["http://metadata.google.internal./computeMetadata/v1/", "private"],
      ["http://printer.local./", "private"],
      ["http://intranet./", "private"],
      ["http://localhost../", "loopback"],
      // NAT64 (64:ff9b::/96, and the local-use 64:ff9b:1::/48) reaches the IPv4 inside.
      ["http://[64:ff9b::7f00:1]/", "private"],
      ["http://[64:ff9b::a9fe:a9fe]/", "private"],
      ["http://[64:ff9b:1::a00:1]/", "private"],
      // 6to4 (2002::/16) and Teredo (2001::/32) tunnel to an IPv4 address.
      ["http://[2002:7f00:1::]/", "private"],
      ["http://[2002:a9fe:a9fe::1]/", "private"],
      ["http://[2001::1]/", "private"],
      ["http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "private"],
      // IPv4-translated (::ffff:0:0:0/96), IPv4-compatible (::/96), site-local (fec0::/10).
      ["http://[::ffff:0:7f00:1]/", "private"],
      ["http://[::ffff:0:a00:1]/", "private"],
      ["http://[::127.0.0.1]/", "private"],
      ["http://[fec0::1]/", "private"],
      ["http://[feff::1]/", "private"],
      // IPv4-mapped: the IPv4 address inside decides.
      ["http://[::ffff:7f00:1]/", "loopback"],
      ["http://[::ffff:169.254.169.254]/", "private"],
      // Documentation, discard, unique-local, multicast and not-yet-allocated space.
      ["http://[2001:db8::1]/", "private"],
      ["http://[100::1]/", "private"],
      ["http://[fc00::1]/", "private"],
      ["http://[ff02::1]/", "private"],
      ["http://[4000::1]/", "private"],
      ["http://[::]/", "private"],
      ["http://192.0.2.1/", "private"],
      ["http://255.255.255.255/", "private"],
      ["http://198.18.0.1/", "private"],
    ] as const) {
      expect({ url, problem: host(url) }).toEqual({ url, problem });
    }
    // Through the API too: each is refused when registered.
    expect(() => checkWebhookTarget("http://localhost./hook", false)).toThrow(/loopback/);
    expect(() => checkWebhookTarget("http://[64:ff9b::7f00:1]/hook", true)).toThrow(/private/);
  });
});

describe("deliveries", () => {
  it("a finished job is delivered from the queue to its endpoint and its own URL, signed per Standard Webhooks", async () => {
    const world = await newWorld();
    const endpoint = await registerEndpoint(world, `${receiver}/ok/signed-endpoint`);
    await registerEndpoint(world, `${receiver}/ok/not-subscribed`, ["job.failed"]);
    const job = await finishJob(world, "succeed", { webhookUrl: `${receiver}/ok/signed-job` });
    expect(job.webhookSecret).toMatch(/^whsec_/);

    for (const [box, secret] of [
      ["signed-endpoint", endpoint.secret],
      ["signed-job", job.webhookSecret as string],
    ]) {
      const [request] = await waitFor(async () => {
        const got = await received(box);
        return got.length > 0 ? got : undefined;
      });
      const event = new Webhook(secret).verify(request.body, request.headers) as {
        type: string;
        data: { job: { id: string; status: string } };
      };
      expect(event.type).toBe("job.succeeded");
      expect(event.data.job).toMatchObject({ id: job.id, status: "succeeded" });
      expect(() =>
        new Webhook(
          endpoint.secret === secret ? (job.webhookSecret as string) : endpoint.secret,
        ).verify(request.body, request.headers),
      ).toThrow();
    }
    const deliveries = await waitFor(async () => {
      const res = await call(`/v1/webhooks/${endpoint.id}/deliveries`, { key: world.apiKey });
      const list = ((await res.json()) as { deliveries: Delivery[] }).deliveries;
      return list[0]?.status === "succeeded" ? list : undefined;
    });
    expect(deliveries[0]).toMatchObject({
      eventType: "job.succeeded",
      attempts: [{ attempt: 1, statusCode: 204, error: null }],
    });
    expect(await received("not-subscribed")).toEqual([]);
    const forJob = (await (
      await call(`/v1/jobs/${job.id}/deliveries`, { key: world.apiKey })
    ).json()) as { deliveries: Delivery[] };
    expect(forJob.deliveries).toHaveLength(2);
  });

  it("cancelling a job sends job.cancelled, once, to its endpoints and its own URL", async () => {
    const world = await newWorld();
    const endpoint = await registerEndpoint(world, `${receiver}/ok/cancelled-endpoint`);
    await registerEndpoint(world, `${receiver}/ok/cancelled-unsubscribed`, ["job.failed"]);
    const job = (await createEncodeJob(world, 1, {
      webhookUrl: `${receiver}/ok/cancelled-job`,
    })) as { id: string; webhookSecret?: string };
    const [task] = await lease(world.workerKey);
    const cancel = () => call(`/v1/jobs/${job.id}/cancel`, { method: "POST", key: world.apiKey });
    expect((await cancel()).status).toBe(200);
    expect((await cancel()).status).toBe(200);
    // The worker's later calls change nothing and send nothing.
    await writeTokensFor(task, world.tiny);
    await expectProblem(
      await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
        leaseId: task.leaseId,
        result: { kind: "encode" },
      }),
      409,
      "job-cancelled",
    );

    for (const [box, secret] of [
      ["cancelled-endpoint", endpoint.secret],
      ["cancelled-job", job.webhookSecret as string],
    ]) {
      const [request] = await waitFor(async () => {
        const got = await received(box);
        return got.length > 0 ? got : undefined;
      });
      const event = new Webhook(secret).verify(request.body, request.headers) as {
        type: string;
        data: { job: { id: string; status: string; finishedAt: string | null } };
      };
      expect(event.type).toBe("job.cancelled");
      expect(event.data.job).toMatchObject({ id: job.id, status: "cancelled" });
      expect(event.data.job.finishedAt).not.toBeNull();
    }
    const deliveries = await waitFor(async () => {
      const res = await call(`/v1/jobs/${job.id}/deliveries`, { key: world.apiKey });
      const list = ((await res.json()) as { deliveries: Delivery[] }).deliveries;
      return list.every((d) => d.status === "succeeded") ? list : undefined;
    });
    expect(deliveries.map((d) => d.eventType)).toEqual(["job.cancelled", "job.cancelled"]);
    expect(await received("cancelled-unsubscribed")).toEqual([]);
  });

  it("a cancelled train job is a training.cancelled event", async () => {
    const world = await newWorld();
    await registerEndpoint(world, `${receiver}/ok/training-cancelled`, ["training.cancelled"]);
    const ids = await uploadImages(world.apiKey, 1);
    const created = await call("/v1/jobs", {
      ...json({ kind: "train", inputs: { images: ids } }),
      key: world.apiKey,
    });
    const { id } = (await created.json()) as { id: string };
    expect(
      (await call(`/v1/jobs/${id}/cancel`, { method: "POST", key: world.apiKey })).status,
    ).toBe(200);
    const [request] = await waitFor(async () => {
      const got = await received("training-cancelled");
      return got.length > 0 ? got : undefined;
    });
    expect(JSON.parse(request.body)).toMatchObject({
      type: "training.cancelled",
      data: { job: { id, kind: "train", status: "cancelled" } },
    });
  });

  it("a failed train job is a training.failed event", async () => {
    const world = await newWorld();
    await registerEndpoint(world, `${receiver}/ok/training`, ["training.failed"]);
    const ids = await uploadImages(world.apiKey, 1);
    const created = await call("/v1/jobs", {
      ...json({ kind: "train", inputs: { images: ids } }),
      key: world.apiKey,
    });
    expect(created.status).toBe(202);
    const [task] = await lease(world.workerKey, { kinds: ["train"] });
    const progress = { done: 3, total: 8, stage: "epoch 2/4" };
    await workerCall(world.workerKey, `/tasks/${task.taskId}/heartbeat`, {
      leaseId: task.leaseId,
      progress,
    });
    await workerCall(world.workerKey, `/tasks/${task.taskId}/fail`, {
      leaseId: task.leaseId,
      retryable: false,
      error: {
        code: "evaluation-below-threshold",
        message: "The trained tokenizer misses the job's thresholds: ...",
        evaluation: EVALUATION,
      },
    });
    const [request] = await waitFor(async () => {
      const got = await received("training");
      return got.length > 0 ? got : undefined;
    });
    // The job as the API shows it: how far it got, its base, no tokenizer made, and the figures
    // that kept it from being registered.
    const sent = JSON.parse(request.body);
    expect(sent.data.job.error).toEqual({
      code: "evaluation-below-threshold",
      message: "The trained tokenizer misses the job's thresholds: ...",
    });
    expect(sent.data.job.evaluation).toEqual(EVALUATION);
    expect(await getJob(world, sent.data.job.id)).toMatchObject({
      status: "failed",
      tokenizer: null,
      evaluation: EVALUATION,
    });
    expect(sent).toMatchObject({
      type: "training.failed",
      data: {
        job: {
          error: { code: "evaluation-below-threshold" },
          progress,
          baseTokenizer: { manifestHash: world.tiny.hash },
          tokenizer: null,
          inputs: { images: ids },
          parameters: {},
        },
      },
    });
  });

  it("a failing receiver is retried with backoff, every attempt recorded, and finally marked failed", async () => {
    const world = await newWorld();
    const endpoint = await registerEndpoint(world, `${receiver}/fail/always`);
    await finishJob(world, "fail");
    const first = await waitFor(async () => {
      const res = await call(`/v1/webhooks/${endpoint.id}/deliveries`, { key: world.apiKey });
      const [delivery] = ((await res.json()) as { deliveries: Delivery[] }).deliveries;
      return delivery?.attempts.length ? delivery : undefined;
    });
    expect(first).toMatchObject({
      status: "pending",
      eventType: "job.failed",
      attempts: [{ attempt: 1, statusCode: 500, error: "HTTP 500" }],
    });
    // The queue would wait 5 s, 30 s, ... about a day in all; run the remaining attempts now.
    const config = configOf(env);
    for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) {
      const outcome = await attemptDelivery(env, config, first.id);
      if (attempt < MAX_ATTEMPTS) {
        expect(outcome.status).toBe("retry");
        const delay = (outcome as { delaySeconds: number }).delaySeconds;
        expect(delay).toBeGreaterThanOrEqual(0.8 * RETRY_DELAYS_S[attempt - 1] - 1);
        expect(delay).toBeLessThanOrEqual(1.2 * RETRY_DELAYS_S[attempt - 1] + 1);
      } else {
        expect(outcome.status).toBe("failed");
      }
    }
    expect(RETRY_DELAYS_S.reduce((a, b) => a + b, 0) / 3600).toBeGreaterThan(20);
    const res = await call(`/v1/webhooks/${endpoint.id}/deliveries`, { key: world.apiKey });
    const [done] = ((await res.json()) as { deliveries: Delivery[] }).deliveries;
    expect(done.status).toBe("failed");
    expect(done.attempts.map((a) => a.attempt)).toEqual(
      Array.from({ length: MAX_ATTEMPTS }, (_, i) => i + 1),
    );
    expect((await received("always")).length).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
    expect(new Set((await received("always")).map((r) => r.headers["webhook-id"])).size).toBe(1);

    // Redelivery: a new delivery of the same message.
    const again = await call(`/v1/webhooks/deliveries/${done.id}/redeliver`, {
      method: "POST",
      key: world.apiKey,
    });
    expect(again.status).toBe(202);
    const redelivered = (await again.json()) as Delivery;
    expect(redelivered).toMatchObject({
      status: "pending",
      messageId: done.messageId,
      attempts: [],
    });
    expect(redelivered.id).not.toBe(done.id);
    const other = await newWorld();
    await expectProblem(
      await call(`/v1/webhooks/deliveries/${done.id}/redeliver`, {
        method: "POST",
        key: other.apiKey,
      }),
      404,
      "delivery-not-found",
    );
  });
});

/** `count` delivered deliveries of one message, one attempt each, written straight into D1. */
async function insertDeliveries(
  world: World,
  count: number,
  target: { jobId: string | null; endpointId: string | null },
  extra: Partial<DeliveryRow> = {},
): Promise<string[]> {
  const db = database(env);
  const start = Date.now();
  const rows = Array.from({ length: count }, (_, i) => ({
    id: newId("dlv", start + i),
    tenantId: world.id,
    ...target,
    url: `${receiver}/ok/paged`,
    messageId: "msg_paged",
    eventType: "job.succeeded",
    payload: "{}",
    status: "succeeded" as const,
    attempts: 1,
    nextAttemptAt: null,
    createdAt: start + i,
    updatedAt: start + i,
    ...extra,
  }));
  const statements = rows.flatMap((r) => [
    db.insert(webhookDeliveries).values(r),
    db.insert(webhookAttempts).values({
      deliveryId: r.id,
      attempt: 1,
      statusCode: 204,
      error: null,
      durationMs: 3,
      createdAt: r.createdAt,
    }),
  ]);
  const [first, ...rest] = statements;
  await db.batch([first, ...rest]);
  return rows.map((r) => r.id);
}

type DeliveryPage = { deliveries: Delivery[]; nextCursor: string | null };

/** Every page of a delivery list, following `nextCursor` until it is null. */
async function allPages(world: World, path: string, limit: number): Promise<DeliveryPage[]> {
  const pages: DeliveryPage[] = [];
  let cursor: string | null = null;
  do {
    const query = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await call(`${path}?${query}`, { key: world.apiKey });
    expect(res.status).toBe(200);
    const page = (await res.json()) as DeliveryPage;
    pages.push(page);
    cursor = page.nextCursor;
  } while (cursor);
  return pages;
}

describe("delivery lists", () => {
  it("page past 100 deliveries, newest first, each with its attempts", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const endpoint = await registerEndpoint(world, `${receiver}/ok/paged`);
    const forJob = await insertDeliveries(world, 150, { jobId: job.id, endpointId: null });
    const forEndpoint = await insertDeliveries(world, 120, {
      jobId: null,
      endpointId: endpoint.id,
    });

    for (const [path, ids] of [
      [`/v1/jobs/${job.id}/deliveries`, forJob],
      [`/v1/webhooks/${endpoint.id}/deliveries`, forEndpoint],
    ] as const) {
      const first = (await (await call(path, { key: world.apiKey })).json()) as DeliveryPage;
      expect(first.deliveries).toHaveLength(20);
      expect(first.nextCursor).toEqual(expect.any(String));

      const pages = await allPages(world, path, 100);
      expect(pages.map((p) => p.deliveries.length)).toEqual([100, ids.length - 100]);
      const listed = pages.flatMap((p) => p.deliveries);
      expect(listed.map((d) => d.id)).toEqual([...ids].reverse());
      expect(listed.every((d) => d.attempts.length === 1)).toBe(true);
      expect(listed[0].attempts[0]).toMatchObject({ attempt: 1, statusCode: 204, error: null });
    }
  });

  it("refuse bad paging parameters with a 400 problem", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const endpoint = await registerEndpoint(world, `${receiver}/ok/paged-bad`);
    for (const path of [
      `/v1/jobs/${job.id}/deliveries`,
      `/v1/webhooks/${endpoint.id}/deliveries`,
    ]) {
      for (const query of ["limit=0", "limit=101", "limit=ten", "limit=2.5"]) {
        await expectProblem(
          await call(`${path}?${query}`, { key: world.apiKey }),
          400,
          "invalid-request",
        );
      }
      for (const cursor of ["not-a-cursor", btoa(JSON.stringify({ before: 7 }))]) {
        await expectProblem(
          await call(`${path}?cursor=${encodeURIComponent(cursor)}`, { key: world.apiKey }),
          400,
          "invalid-cursor",
        );
      }
    }
  });
});

describe("webhook fan-out", () => {
  it(`caps a tenant at ${MAX_WEBHOOK_ENDPOINTS} endpoints, even when registrations race`, async () => {
    const world = await newWorld();
    const answers = await Promise.all(
      Array.from({ length: MAX_WEBHOOK_ENDPOINTS + 5 }, (_, i) =>
        call("/v1/webhooks", { ...json({ url: `${receiver}/ok/cap-${i}` }), key: world.apiKey }),
      ),
    );
    expect(answers.filter((r) => r.status === 201)).toHaveLength(MAX_WEBHOOK_ENDPOINTS);
    const refused = answers.filter((r) => r.status !== 201);
    expect(refused).toHaveLength(5);
    for (const res of refused) await expectProblem(res, 422, "too-many-webhooks");
    const listed = (await (await call("/v1/webhooks", { key: world.apiKey })).json()) as {
      webhooks: { id: string }[];
    };
    expect(listed.webhooks).toHaveLength(MAX_WEBHOOK_ENDPOINTS);

    // The cap is per tenant, and deleting one makes room for one.
    await registerEndpoint(await newWorld(), `${receiver}/ok/cap-other`);
    const removed = listed.webhooks[0].id;
    expect(
      (await call(`/v1/webhooks/${removed}`, { method: "DELETE", key: world.apiKey })).status,
    ).toBe(204);
    await registerEndpoint(world, `${receiver}/ok/cap-again`);
    await expectProblem(
      await call("/v1/webhooks", { ...json({ url: `${receiver}/ok/cap-x` }), key: world.apiKey }),
      422,
      "too-many-webhooks",
    );
  });

  it("the sweep sends more than 100 deliveries in batches the queue accepts", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const now = Date.now();
    // Due in 10 hours, so that the consumer leaves them alone during the test.
    const due = now + 10 * 3600_000;
    const ids = await insertDeliveries(
      world,
      150,
      { jobId: job.id, endpointId: null },
      { status: "pending", attempts: 0, nextAttemptAt: due, sendFailedAt: now },
    );
    const batches: { size: number; delays: number[] }[] = [];
    const queue = env.WEBHOOKS as Env["WEBHOOKS"];
    // The local queue refuses a sendBatch of more than 100 messages, as Cloudflare's does.
    const recording = {
      ...env,
      WEBHOOKS: {
        sendBatch: (messages: MessageSendRequest[], options?: QueueSendBatchOptions) => {
          batches.push({ size: messages.length, delays: messages.map((m) => m.delaySeconds ?? 0) });
          return queue.sendBatch(messages, options);
        },
      },
    } as unknown as Env;
    expect(await requeueLostDeliveries(recording, now)).toBeGreaterThanOrEqual(150);
    expect(batches.map((b) => b.size).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(150);
    expect(Math.max(...batches.map((b) => b.size))).toBeLessThanOrEqual(100);
    expect(batches.flatMap((b) => b.delays)).toContain(36_000);
    const rows = await database(env)
      .select({ id: webhookDeliveries.id, sendFailedAt: webhookDeliveries.sendFailedAt })
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.jobId, job.id));
    expect(rows).toHaveLength(ids.length);
    expect(rows.every((r) => r.sendFailedAt === null)).toBe(true);
  });

  it("a delivery whose queue message could not be sent is logged and sent by the next sweep", async () => {
    const world = await newWorld();
    const endpoint = await registerEndpoint(world, `${receiver}/ok/resent`);
    const db = database(env);
    const [id] = await insertDeliveries(
      world,
      1,
      { jobId: null, endpointId: endpoint.id },
      { url: `${receiver}/ok/resent`, status: "failed" },
    );
    const [done] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
    const failing = {
      ...env,
      WEBHOOKS: {
        sendBatch: () => Promise.reject(new Error("queue unavailable")),
      },
    } as unknown as Env;
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const again = await redeliver(failing, db, done);
    expect(errors).toHaveBeenCalledWith(expect.stringContaining("next sweep"), expect.any(Error));
    errors.mockRestore();
    const [marked] = await db
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.id, again.id));
    expect(marked).toMatchObject({ status: "pending", sendFailedAt: expect.any(Number) });
    expect(await received("resent")).toEqual([]);

    expect(await requeueLostDeliveries(env, Date.now())).toBeGreaterThanOrEqual(1);
    const sent = await waitFor(async () => {
      const [row] = await db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.id, again.id));
      return row.status === "succeeded" ? row : undefined;
    });
    expect(sent.sendFailedAt).toBeNull();
    expect(await received("resent")).toHaveLength(1);
  });
});

/**
 * The edge as a crash right after a job's end leaves it: its first D1 batch (the transition)
 * commits, then every D1 call and every queue send fails.
 */
function crashingAfterFirstBatch(): Env {
  const d1 = env.DB as D1Database;
  let crashed = false;
  const crash = (): never => {
    throw new Error("the edge crashed");
  };
  const DB = {
    prepare: (query: string) => (crashed ? crash() : d1.prepare(query)),
    batch: async (statements: D1PreparedStatement[]) => {
      if (crashed) crash();
      const results = await d1.batch(statements);
      crashed = true;
      return results;
    },
  };
  return { ...env, DB, WEBHOOKS: { sendBatch: async () => crash() } } as unknown as Env;
}

async function deliveriesOf(jobId: string): Promise<DeliveryRow[]> {
  return database(env)
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.jobId, jobId))
    .orderBy(webhookDeliveries.url);
}

/** What the sweep does once a delivery has waited LOST_AFTER_MS for a queue message. */
const sweepLost = () => requeueLostDeliveries(env, Date.now() + LOST_AFTER_MS + 1000);

describe("the outbox: a job's end and its deliveries are one batch", () => {
  it("a crash right after complete loses no event: the sweep delivers it, and the retried complete adds none", async () => {
    const world = await newWorld();
    const endpoint = await registerEndpoint(world, `${receiver}/ok/outbox-endpoint`);
    const job = (await createEncodeJob(world, 1, {
      webhookUrl: `${receiver}/ok/outbox-job`,
    })) as { id: string; webhookSecret?: string };
    const [task] = await lease(world.workerKey);
    await writeTokensFor(task, world.tiny);
    const request = { leaseId: task.leaseId, result: { kind: "encode" as const } };

    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const worker = { tenantId: world.id, keyId: "key_crash" };
    await completeTask(crashingAfterFirstBatch(), worker, task.taskId, request);
    errors.mockRestore();
    const ended = await getJob(world, job.id);
    expect(ended.status).toBe("succeeded");
    const written = await deliveriesOf(job.id);
    expect(written.map((d) => [d.url, d.status, d.eventType, d.sendFailedAt])).toEqual([
      [`${receiver}/ok/outbox-endpoint`, "pending", "job.succeeded", null],
      [`${receiver}/ok/outbox-job`, "pending", "job.succeeded", null],
    ]);
    // The payload is the job as the batch left it.
    expect(JSON.parse(written[0].payload).data.job).toEqual(ended);

    // The worker heard nothing and completes again: the same answer, no second event.
    const again = await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, request);
    expect(again.status).toBe(200);
    expect((await deliveriesOf(job.id)).map((d) => d.id)).toEqual(written.map((d) => d.id));

    expect(await sweepLost()).toBeGreaterThanOrEqual(2);
    for (const [box, secret] of [
      ["outbox-endpoint", endpoint.secret],
      ["outbox-job", job.webhookSecret as string],
    ]) {
      const [request] = await waitFor(async () => {
        const got = await received(box);
        return got.length > 0 ? got : undefined;
      });
      const event = new Webhook(secret).verify(request.body, request.headers) as { type: string };
      expect(event.type).toBe("job.succeeded");
    }
    await waitFor(async () =>
      (await deliveriesOf(job.id)).every((d) => d.status === "succeeded") ? true : undefined,
    );
    expect(await received("outbox-endpoint")).toHaveLength(1);
    expect(await received("outbox-job")).toHaveLength(1);
  });

  it("two racing completes write one event", async () => {
    const world = await newWorld();
    await registerEndpoint(world, `${receiver}/ok/outbox-race`);
    const job = await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    await writeTokensFor(task, world.tiny);
    const complete = () =>
      workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
        leaseId: task.leaseId,
        result: { kind: "encode" },
      });
    const answers = await Promise.all([complete(), complete(), complete()]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await deliveriesOf(job.id)).toHaveLength(1);
  });

  it("a crash while expired leases are swept changes nothing: the next sweep ends task and job together", async () => {
    const world = await newWorld();
    await registerEndpoint(world, `${receiver}/ok/outbox-sweep`);
    const { id } = await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    await env.DB.prepare("UPDATE tasks SET max_attempts = 1 WHERE id = ?").bind(task.taskId).run();
    await expireLease(task.taskId);
    const d1 = env.DB as D1Database;
    const crashing = {
      ...env,
      DB: {
        prepare: (query: string) => d1.prepare(query),
        batch: async () => {
          throw new Error("the edge crashed");
        },
      },
    } as unknown as Env;
    await expect(requeueExpired(crashing, Date.now(), world.id)).rejects.toThrow(
      "the edge crashed",
    );
    const taskRow = () =>
      env.DB.prepare("SELECT status FROM tasks WHERE id = ?").bind(task.taskId).first("status");
    expect(await taskRow()).toBe("leased");
    expect(await deliveriesOf(id)).toEqual([]);

    expect(await requeueExpired(env, Date.now(), world.id)).toBe(1);
    expect(await taskRow()).toBe("failed");
    expect((await getJob(world, id)).status).toBe("failed");
    expect((await deliveriesOf(id)).map((d) => d.eventType)).toEqual(["job.failed"]);
    expect(await requeueExpired(env, Date.now(), world.id)).toBe(0);
  });

  it("every other ending writes its deliveries in the batch that ends the job", async () => {
    const world = await newWorld();
    await registerEndpoint(world, `${receiver}/ok/outbox-endings`);
    const crash = () => crashingAfterFirstBatch();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const worker = { tenantId: world.id, keyId: "key_crash" };
    const failure = { code: "bad-image", message: "cannot decode" };
    const trainJob = async () => {
      const res = await call("/v1/jobs", {
        ...json({ kind: "train", inputs: { images: await uploadImages(world.apiKey, 1) } }),
        key: world.apiKey,
      });
      expect(res.status).toBe(202);
      return ((await res.json()) as { id: string }).id;
    };
    const leased = async (jobId: string) =>
      (await lease(world.workerKey, { kinds: ["encode", "train"], max: 10 })).find(
        (t) => t.jobId === jobId,
      ) as LeasedTask;
    const cancel = async (jobId: string) => {
      const crashed = crash();
      await expect(cancelJob(crashed, database(crashed), world.id, jobId)).rejects.toThrow(
        "the edge crashed",
      );
    };
    const endings: [string, () => Promise<string>][] = [
      [
        "job.failed",
        async () => {
          const { id } = await createEncodeJob(world);
          const task = await leased(id);
          await failTask(crash(), worker, task.taskId, {
            leaseId: task.leaseId,
            retryable: false,
            error: failure,
          });
          return id;
        },
      ],
      [
        "job.failed",
        async () => {
          const { id } = await createEncodeJob(world);
          const task = await leased(id);
          await env.DB.prepare("UPDATE tasks SET max_attempts = 1 WHERE id = ?")
            .bind(task.taskId)
            .run();
          await expireLease(task.taskId);
          await requeueExpired(crash(), Date.now(), world.id);
          return id;
        },
      ],
      [
        "job.cancelled",
        async () => {
          const { id } = await createEncodeJob(world);
          await cancel(id);
          return id;
        },
      ],
      [
        "training.failed",
        async () => {
          const id = await trainJob();
          const task = await leased(id);
          // Out of attempts, a retryable failure ends the job too.
          await env.DB.prepare("UPDATE tasks SET max_attempts = 1 WHERE id = ?")
            .bind(task.taskId)
            .run();
          await failTask(crash(), worker, task.taskId, {
            leaseId: task.leaseId,
            retryable: true,
            error: failure,
          });
          return id;
        },
      ],
      [
        "training.cancelled",
        async () => {
          const id = await trainJob();
          await cancel(id);
          return id;
        },
      ],
    ];
    for (const [type, end] of endings) {
      const id = await end();
      const job = await getJob(world, id);
      const rows = await deliveriesOf(id);
      expect({ type, status: job.status, rows: rows.map((d) => [d.eventType, d.status]) }).toEqual({
        type,
        status: type.split(".")[1],
        rows: [[type, "pending"]],
      });
      expect(JSON.parse(rows[0].payload).data.job).toEqual(job);
    }
    errors.mockRestore();
    expect(await sweepLost()).toBeGreaterThanOrEqual(endings.length);
    await waitFor(async () => {
      const got = await received("outbox-endings");
      return got.length >= endings.length ? got : undefined;
    });
    expect(await received("outbox-endings")).toHaveLength(endings.length);
  });
});

/** A WEBHOOK_KEYS entry with a fresh random key. */
function keyEntry(id: string): string {
  return `${id}:${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
}

/** A request to the app under `keysEnv` instead of the test bindings. */
async function callWith(keysEnv: Env, path: string, init: RequestInit & { key: string }) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${init.key}`);
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`http://edge${path}`, { ...init, headers }),
    keysEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const SEALED_UNDER_TEST = /^aes256gcm:test:[\w-]{16}:[\w-]+$/;

async function storedEndpointSecret(id: string): Promise<string> {
  const [row] = await database(env)
    .select({ secret: webhookEndpoints.secret })
    .from(webhookEndpoints)
    .where(eq(webhookEndpoints.id, id));
  return row.secret;
}

async function storedJobSecret(id: string): Promise<string> {
  const [row] = await database(env)
    .select({ secret: jobs.webhookSecret })
    .from(jobs)
    .where(eq(jobs.id, id));
  return row.secret as string;
}

describe("signing secrets at rest", () => {
  it("are stored encrypted under the current key, bound to their row, and still sign deliveries", async () => {
    const world = await newWorld();
    const endpoint = await registerEndpoint(world, `${receiver}/ok/at-rest-endpoint`);
    const job = await finishJob(world, "succeed", { webhookUrl: `${receiver}/ok/at-rest-job` });
    const secret = job.webhookSecret as string;
    const stored = {
      endpoint: await storedEndpointSecret(endpoint.id),
      job: await storedJobSecret(job.id),
    };
    for (const [value, plain] of [
      [stored.endpoint, endpoint.secret],
      [stored.job, secret],
    ]) {
      expect(value).toMatch(SEALED_UNDER_TEST);
      expect(value).not.toContain(plain.slice("whsec_".length));
    }
    expect(await openSecret(env, stored.endpoint, endpoint.id)).toBe(endpoint.secret);
    expect(await openSecret(env, stored.job, job.id)).toBe(secret);
    // Copied onto another row, a value does not open.
    await expect(openSecret(env, stored.endpoint, job.id)).rejects.toThrow(/does not decrypt/);
    // A fresh IV each time: the same secret never encrypts to the same value.
    expect(await sealSecret(env, secret, job.id)).not.toBe(await sealSecret(env, secret, job.id));

    for (const [box, key] of [
      ["at-rest-endpoint", endpoint.secret],
      ["at-rest-job", secret],
    ]) {
      const [request] = await waitFor(async () => {
        const got = await received(box);
        return got.length > 0 ? got : undefined;
      });
      expect(new Webhook(key).verify(request.body, request.headers)).toMatchObject({
        type: "job.succeeded",
      });
    }
  });

  it("an idempotent replay of a job's creation answers without its secret, and no record keeps it", async () => {
    const world = await newWorld();
    const [image] = await uploadImages(world.apiKey, 1);
    const body = JSON.stringify({
      kind: "encode",
      tokenizer: world.tokenizerId,
      inputs: { images: [image] },
      webhookUrl: `${receiver}/ok/replayed`,
    });
    const send = () =>
      call("/v1/jobs", {
        method: "POST",
        body,
        headers: { "idempotency-key": "secret-once", "content-type": "application/json" },
        key: world.apiKey,
      });
    const first = await send();
    const created = (await first.json()) as { id: string; webhookSecret?: string };
    expect(created.webhookSecret).toMatch(/^whsec_/);
    const replay = await send();
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    const { webhookSecret: _, ...view } = created;
    expect(await replay.json()).toEqual(view);
    const records = await env.DB.prepare("SELECT body FROM idempotency_keys WHERE tenant_id = ?")
      .bind(world.id)
      .all<{ body: string }>();
    expect(records.results).toHaveLength(1);
    expect(records.results[0].body).not.toContain(created.webhookSecret);

    // A record kept before this change loses the secret it held, through the migration.
    const old = { ...created, note: "kept" };
    await env.DB.prepare(
      "INSERT INTO idempotency_keys (tenant_id, route, key, fingerprint, body, created_at) VALUES (?, 'POST /v1/jobs', 'before', 'f', ?, ?)",
    )
      .bind(world.id, JSON.stringify(old), Date.now())
      .run();
    const migration = env.TEST_MIGRATIONS.find((m) =>
      m.name.includes("idempotency_forget_secrets"),
    );
    for (const query of migration?.queries ?? []) await env.DB.prepare(query).run();
    const kept = await env.DB.prepare(
      "SELECT body FROM idempotency_keys WHERE tenant_id = ? AND key = 'before'",
    )
      .bind(world.id)
      .first<string>("body");
    expect(JSON.parse(kept as string)).toEqual({ ...view, note: "kept" });
  });

  it("plain secrets from before encryption still sign, and the sweep encrypts them", async () => {
    const world = await newWorld();
    const plain = newSigningSecret();
    const legacyId = newId("whk", Date.now());
    await database(env)
      .insert(webhookEndpoints)
      .values({
        id: legacyId,
        tenantId: world.id,
        url: `${receiver}/ok/legacy-endpoint`,
        secret: plain,
        events: ["job.succeeded"],
        createdAt: Date.now(),
      });
    const job = await createEncodeJob(world, 1, { webhookUrl: `${receiver}/ok/legacy-job` });
    const jobSecret = (job as { webhookSecret?: string }).webhookSecret as string;
    await database(env).update(jobs).set({ webhookSecret: jobSecret }).where(eq(jobs.id, job.id));
    const [task] = await lease(world.workerKey);
    await writeTokensFor(task, world.tiny);
    await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "encode" },
    });
    for (const [box, key] of [
      ["legacy-endpoint", plain],
      ["legacy-job", jobSecret],
    ]) {
      const [request] = await waitFor(async () => {
        const got = await received(box);
        return got.length > 0 ? got : undefined;
      });
      expect(() => new Webhook(key).verify(request.body, request.headers)).not.toThrow();
    }

    expect(await resealSecrets(env)).toBeGreaterThanOrEqual(2);
    const stored = {
      endpoint: await storedEndpointSecret(legacyId),
      job: await storedJobSecret(job.id),
    };
    expect(stored.endpoint).toMatch(SEALED_UNDER_TEST);
    expect(stored.job).toMatch(SEALED_UNDER_TEST);
    expect(await openSecret(env, stored.endpoint, legacyId)).toBe(plain);
    expect(await openSecret(env, stored.job, job.id)).toBe(jobSecret);
    // Nothing left to do: the next sweep changes nothing.
    expect(await resealSecrets(env)).toBe(0);
  });

  it("rotate: old values open once a new key is current, new ones use it, the sweep moves the old ones", async () => {
    const world = await newWorld();
    const old = await registerEndpoint(world, `${receiver}/ok/rotation-old`);
    const next = keyEntry("next");
    const rotated: Env = { ...env, WEBHOOK_KEYS: `${next},${env.WEBHOOK_KEYS}` };

    expect(await openSecret(rotated, await storedEndpointSecret(old.id), old.id)).toBe(old.secret);
    const res = await callWith(rotated, "/v1/webhooks", {
      ...json({ url: `${receiver}/ok/rotation-new` }),
      key: world.apiKey,
    });
    const fresh = (await res.json()) as { id: string; secret: string };
    const freshStored = await storedEndpointSecret(fresh.id);
    expect(freshStored).toMatch(/^aes256gcm:next:/);
    expect(await openSecret(rotated, freshStored, fresh.id)).toBe(fresh.secret);
    // A deployment that does not list the key a value names says which.
    await expect(openSecret(env, freshStored, fresh.id)).rejects.toMatchObject({
      status: 500,
      code: "misconfigured",
      message: expect.stringMatching(/key "next", which WEBHOOK_KEYS no longer lists/),
    });

    expect(await resealSecrets(rotated)).toBeGreaterThanOrEqual(1);
    const moved = await storedEndpointSecret(old.id);
    expect(moved).toMatch(/^aes256gcm:next:/);
    expect(await openSecret(rotated, moved, old.id)).toBe(old.secret);
    // Back under the test key, which the queue consumer of the other tests has.
    expect(
      await resealSecrets({ ...env, WEBHOOK_KEYS: `${env.WEBHOOK_KEYS},${next}` }),
    ).toBeGreaterThanOrEqual(2);
    for (const { id, secret } of [old, fresh]) {
      expect(await openSecret(env, await storedEndpointSecret(id), id)).toBe(secret);
    }
  });

  it("a deployment without a usable WEBHOOK_KEYS is refused where a key is needed, and only there", async () => {
    const world = await newWorld();
    const [image] = await uploadImages(world.apiKey, 1);
    const jobBody = (extra: object) =>
      json({ kind: "encode", tokenizer: world.tokenizerId, inputs: { images: [image] }, ...extra });
    const register = json({ url: `${receiver}/ok/no-key` });
    const { WEBHOOK_KEYS: _, ...unset } = env;
    for (const [keys, status, code, detail] of [
      [unset, 503, "webhook-keys-not-configured", /the WEBHOOK_KEYS secret.* is not set/],
      [{ ...env, WEBHOOK_KEYS: "k1:c2hvcnQ=" }, 500, "misconfigured", /WEBHOOK_KEYS: each entry/],
      [
        { ...env, WEBHOOK_KEYS: `${keyEntry("a")},${keyEntry("a")}` },
        500,
        "misconfigured",
        /WEBHOOK_KEYS: a key id is listed twice/,
      ],
    ] as const) {
      const refused = [
        await callWith(keys, "/v1/webhooks", { ...register, key: world.apiKey }),
        await callWith(keys, "/v1/jobs", {
          ...jobBody({ webhookUrl: `${receiver}/ok/no-key` }),
          key: world.apiKey,
        }),
      ];
      for (const res of refused) {
        expect((await expectProblem(res, status, code)).detail).toMatch(detail);
      }
      // A job without a webhook needs no key.
      expect((await callWith(keys, "/v1/jobs", { ...jobBody({}), key: world.apiKey })).status).toBe(
        202,
      );
    }
    // Nothing was left behind by the refused requests.
    const webhooks = await (await call("/v1/webhooks", { key: world.apiKey })).json();
    expect(webhooks).toEqual({ webhooks: [] });
    const listed = (await (await call("/v1/jobs", { key: world.apiKey })).json()) as {
      jobs: { webhookUrl: string | null }[];
    };
    expect(listed.jobs.map((j) => j.webhookUrl)).toEqual([null, null, null]);
  });
});
