import {
  MAX_JSON_BODY_BYTES,
  MAX_MANIFEST_BYTES,
  MAX_METRICS_BYTES,
  TOKEN_STREAM_MEDIA_TYPE,
} from "@revq/shared";
import { describe, expect, it } from "vitest";
import {
  createEncodeJob,
  getJob,
  lease,
  newWorld,
  uploadImages,
  workerCall,
} from "./fixtures/jobs.ts";
import { tinyTokenizer } from "./fixtures/tokenizer.ts";
import { ADMIN_KEY, call, expectProblem, json } from "./helpers.ts";

const post = (path: string, body: BodyInit, type: string, key: string) =>
  call(path, { method: "POST", body, headers: { "content-type": type }, key });

describe("JSON bodies", () => {
  it("are refused past MAX_JSON_BODY_BYTES on every route, whatever JSON media type they name", async () => {
    const world = await newWorld();
    const big = JSON.stringify({ name: "x".repeat(MAX_JSON_BODY_BYTES) });
    const routes: [string, string][] = [
      ["/v1/admin/tenants", ADMIN_KEY],
      ["/v1/admin/tokenizers", ADMIN_KEY],
      ["/v1/datasets", world.apiKey],
      ["/v1/webhooks", world.apiKey],
      ["/v1/worker/lease", world.workerKey],
      ["/v1/decode", world.apiKey],
    ];
    for (const [path, key] of routes) {
      await expectProblem(await post(path, big, "application/json", key), 413, "content-too-large");
    }
    await expectProblem(
      await post("/v1/datasets", big, "Application/merge-patch+JSON; charset=utf-8", world.apiKey),
      413,
      "content-too-large",
    );
    const datasets = await (await call("/v1/datasets", { key: world.apiKey })).json();
    expect(datasets).toMatchObject({ datasets: [] });
  });

  it("are the only ones the JSON limit takes: others meet their routes' own", async () => {
    const world = await newWorld();
    const stream = new Uint8Array(MAX_JSON_BODY_BYTES + 1);
    await expectProblem(
      await post("/v1/decode", stream, TOKEN_STREAM_MEDIA_TYPE, world.apiKey),
      400,
      "token-stream.bad-magic",
    );
  });
});

describe("free-form JSON fields", () => {
  it("a worker's metrics are bounded, and nothing is recorded of a refused heartbeat or complete", async () => {
    const world = await newWorld();
    const job = await createEncodeJob(world);
    const [task] = await lease(world.workerKey);
    const key = "m".repeat(90);
    const metrics = Object.fromEntries(
      Array.from({ length: Math.ceil(MAX_METRICS_BYTES / 100) }, (_, i) => [`${key}${i}`, i]),
    );
    const heartbeat = await workerCall(world.workerKey, `/tasks/${task.taskId}/heartbeat`, {
      leaseId: task.leaseId,
      metrics,
    });
    expect((await expectProblem(heartbeat, 400, "invalid-request")).detail).toContain(
      "json.metrics",
    );
    const complete = await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "encode" },
      metrics,
    });
    await expectProblem(complete, 400, "invalid-request");
    const events = await (await call(`/v1/jobs/${job.id}/events`, { key: world.apiKey })).json();
    const types = (events as { events: { type: string }[] }).events.map((e) => e.type);
    expect(types).not.toContain("metrics");
    expect((await getJob(world, job.id)).status).toBe("running");
  });

  it("a manifest is bounded, from a worker or an operator", async () => {
    const world = await newWorld();
    const images = await uploadImages(world.apiKey, 1);
    const created = await call("/v1/jobs", {
      ...json({ kind: "train", inputs: { images } }),
      key: world.apiKey,
    });
    const job = (await created.json()) as { id: string };
    const [task] = await lease(world.workerKey, { kinds: ["train"] });
    const { manifest } = await tinyTokenizer("oversized-manifest");
    const padded = { ...manifest, padding: "x".repeat(MAX_MANIFEST_BYTES) };
    const complete = await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "train", manifest: padded },
    });
    expect((await expectProblem(complete, 400, "invalid-request")).detail).toContain(
      "json.result.manifest",
    );
    expect((await getJob(world, job.id)).status).toBe("running");
    const registered = await post(
      "/v1/admin/tokenizers",
      JSON.stringify(padded),
      "application/json",
      ADMIN_KEY,
    );
    await expectProblem(registered, 400, "invalid-request");
  });
});
