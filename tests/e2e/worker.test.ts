/**
 * The whole stack on loopback: wrangler dev (D1, R2 and its S3 door) and real revq-worker
 * processes, on the tiny tokenizer. Leases last 3 s here (heartbeat every second), so that a
 * killed worker's task comes back within seconds.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, lookupCodes, readNpy, readTokenStream } from "@revq/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { LocalEdge } from "./support/edge.ts";
import {
  expectedTokens,
  pixelsOf,
  psnr,
  tokenizerRef,
  vaeReconstruction,
  withTokenizer,
} from "./support/reference.ts";
import { type BuiltTokenizer, type ImageFormat, syntheticImage } from "./support/tiny-tokenizer.ts";
import { WorkerProcess } from "./support/worker-process.ts";
import {
  bytesOf,
  createJob,
  jobEvents,
  statusTrail,
  type Tenant,
  tinyTokenizerOn,
  upload,
  waitForJob,
} from "./support/world.ts";

const edge = new LocalEdge({ LEASE_SECONDS: "3", MAX_LEASE_WAIT_SECONDS: "2" });
const workers: WorkerProcess[] = [];
const dirs: string[] = [];
let tokenizer: { built: BuiltTokenizer; id: string };

function startWorker(
  tenant: Tenant,
  name: string,
  options: Partial<ConstructorParameters<typeof WorkerProcess>[1]> = {},
) {
  const worker = new WorkerProcess(edge, { name, workerKey: tenant.workerKey, ...options });
  workers.push(worker);
  return worker;
}

async function images(count: number, seed: number, formats: ImageFormat[] = ["png"]) {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const format = formats[i % formats.length];
      return { bytes: await syntheticImage(seed + i, format), format };
    }),
  );
}

const isLeased = (l: { msg: string }) => l.msg === "task leased";

/** Uploads `count` images and creates an encode job of them; returns the job and the image bytes. */
async function encodeJob(tenant: Tenant, count: number, seed: number) {
  const sent = await images(count, seed);
  const ids = await upload(edge, tenant, sent);
  const job = await createJob(edge, tenant, {
    kind: "encode",
    tokenizer: tokenizer.id,
    inputs: { images: ids },
  });
  return { job, sent };
}

async function tokensOf(tenant: Tenant, jobId: string): Promise<number[]> {
  const stream = await bytesOf(edge, `/v1/jobs/${jobId}/tokens`, tenant.apiKey);
  const { header, tokens } = readTokenStream(stream);
  expect(header.tokenizerHash).toBe(tokenizer.built.hash);
  return [...tokens];
}

async function expectedFor(sent: { bytes: Uint8Array }[]): Promise<number[]> {
  const ref = tokenizerRef(tokenizer.built.hash, tokenizer.id);
  return withTokenizer(edge, ref, (t) =>
    expectedTokens(
      t,
      sent.map((s) => s.bytes),
    ),
  );
}

beforeAll(async () => {
  await Promise.all([edge.start(), selectBackend("wasm")]);
  tokenizer = await tinyTokenizerOn(edge);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await edge.dispose();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("revq-worker against the local stack", () => {
  it("encodes uploads into tokens, decodable at the edge, and reconstructs them as PNGs", async () => {
    const tenant = await edge.tenant("happy");
    const cacheDir = mkdtempSync(join(tmpdir(), "revq-e2e-cache-"));
    dirs.push(cacheDir);
    const worker = startWorker(tenant, "w-happy", { cacheDir });
    const started = await worker.waitFor((l) => l.msg === "revq-worker started");
    expect(started).toMatchObject({ backend: "wasm", tokenizersCached: [] });

    const sent = await images(3, 300, ["png", "jpeg", "webp"]);
    const ids = await upload(edge, tenant, sent);
    const job = await createJob(edge, tenant, {
      kind: "encode",
      tokenizer: tokenizer.id,
      inputs: { images: ids },
    });
    const done = await waitForJob(edge, tenant, job.id);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1, error: null });
    const tokens = await tokensOf(tenant, job.id);
    expect(tokens).toEqual(await expectedFor(sent));

    const metrics = (await jobEvents(edge, tenant, job.id)).find((e) => e.type === "metrics");
    expect(metrics?.data).toMatchObject({ images: 3 });
    for (let i = 0; i < 3; i++) expect(metrics?.data[`quantMse.${i}`]).toBeGreaterThan(0);

    // Decoding at the edge: the codebook rows of these tokens, exactly.
    const npy = readNpy(
      await bytesOf(edge, "/v1/decode?output=latents&format=npy", tenant.apiKey, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ job: job.id }),
      }),
    );
    expect(npy.shape).toEqual([3, 8, 8, 8]);
    const ref = tokenizerRef(tokenizer.built.hash, tokenizer.id);
    await withTokenizer(edge, ref, async (t) => {
      expect([...(npy.data as Float32Array)]).toEqual([...lookupCodes(t.codebook, tokens, 128)]);
    });

    const reconstruct = await createJob(edge, tenant, {
      kind: "reconstruct",
      tokenizer: tokenizer.id,
      inputs: { job: job.id },
    });
    const reconstructed = await waitForJob(edge, tenant, reconstruct.id);
    expect(reconstructed.status).toBe("succeeded");
    const { images: outputs } = reconstructed.result as { images: { url: string }[] };
    expect(outputs).toHaveLength(sent.length);
    const quality = await withTokenizer(edge, ref, async (t) => {
      const values: number[] = [];
      for (const [i, image] of sent.entries()) {
        const png = await bytesOf(edge, outputs[i].url, tenant.apiKey);
        values.push(psnr(await pixelsOf(png), await vaeReconstruction(t, image.bytes)));
      }
      return values.reduce((a, b) => a + b, 0) / values.length;
    });
    console.log(`e2e: reconstructions vs the VAE's own: PSNR ${quality.toFixed(1)} dB`);
    expect(quality).toBeGreaterThan(20);

    // A restarted worker finds the tokenizer in its disk cache.
    await worker.stop();
    const again = startWorker(tenant, "w-happy-2", { cacheDir });
    const report = await again.waitFor((l) => l.msg === "revq-worker started");
    expect(report.tokenizersCached).toEqual([
      `${tokenizer.built.manifest.name} ${tokenizer.built.hash.slice(0, 12)}`,
    ]);
  });

  it("fails the job of an undecodable image clearly and goes on serving", async () => {
    const tenant = await edge.tenant("corrupt");
    const worker = startWorker(tenant, "w-corrupt");
    const [bad] = await upload(edge, tenant, [
      { bytes: corruptPixels(await syntheticImage(1)), format: "png" },
    ]);
    const job = await createJob(edge, tenant, {
      kind: "encode",
      tokenizer: tokenizer.id,
      inputs: { images: [bad] },
    });
    const failed = await waitForJob(edge, tenant, job.id);
    expect(failed.status).toBe("failed");
    expect(failed.attempts).toBe(1);
    expect(failed.error?.code).toBe("image-undecodable");
    expect(failed.error?.message).toMatch(
      new RegExp(`^image 0 \\(${bad}\\) could not be decoded as PNG: `),
    );
    const { job: good } = await encodeJob(tenant, 2, 400);
    expect((await waitForJob(edge, tenant, good.id)).status).toBe("succeeded");
    expect(worker.lines.filter(isLeased)).toHaveLength(2);
  });

  it("stops a task whose job is cancelled at its next call to the edge, and goes on serving", async () => {
    const tenant = await edge.tenant("cancel");
    const worker = startWorker(tenant, "w-cancel", { batchSize: 1 });
    await worker.waitFor((l) => l.msg === "revq-worker started");
    const { job } = await encodeJob(tenant, 96, 450);
    await worker.waitFor(isLeased);
    await edge.api("POST", `/v1/jobs/${job.id}/cancel`, tenant.apiKey);
    const stopped = await worker.waitFor((l) => l.msg === "task stopped");
    expect(stopped).toMatchObject({ jobId: job.id, why: "cancelled" });
    expect(worker.lines.some((l) => l.msg === "task completed" || l.msg === "task failed")).toBe(
      false,
    );
    expect((await waitForJob(edge, tenant, job.id)).status).toBe("cancelled");
    const { job: next } = await encodeJob(tenant, 1, 460);
    expect((await waitForJob(edge, tenant, next.id)).status).toBe("succeeded");
  });

  it("finishes a SIGKILLed worker's task on another worker, exactly once", async () => {
    const tenant = await edge.tenant("sigkill");
    const first = startWorker(tenant, "w-killed", { batchSize: 2 });
    await first.waitFor((l) => l.msg === "revq-worker started");
    const { job, sent } = await encodeJob(tenant, 48, 500);
    await first.waitFor(isLeased);
    first.kill("SIGKILL");
    await first.exited;
    expect((await waitForJob(edge, tenant, job.id, () => true)).status).toBe("running");

    const second = startWorker(tenant, "w-rescuer");
    const done = await waitForJob(edge, tenant, job.id);
    expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
    const trail = await statusTrail(edge, tenant, job.id);
    expect(trail.filter((s) => s === "succeeded")).toHaveLength(1);
    expect(trail.slice(-3)).toEqual(["queued(lease-expired)", "running", "succeeded"]);
    expect(await tokensOf(tenant, job.id)).toEqual(await expectedFor(sent));
    expect(second.lines.filter(isLeased)).toHaveLength(1);
  });

  it("on SIGTERM releases held tasks, and a waiting worker takes them at once", async () => {
    const tenant = await edge.tenant("sigterm");
    const both = ["w-a", "w-b"].map((name) =>
      startWorker(tenant, name, { graceSeconds: 0, batchSize: 1 }),
    );
    await Promise.all(both.map((w) => w.waitFor((l) => l.msg === "revq-worker started")));
    const { job, sent } = await encodeJob(tenant, 48, 600);
    // Whichever leases the task is stopped at once; the other is waiting in a long-poll.
    const holder = await Promise.any(both.map((w) => w.waitFor(isLeased).then(() => w)));
    const other = both.find((w) => w !== holder) as WorkerProcess;
    const signalled = Date.now();
    holder.kill("SIGTERM");
    expect((await holder.exited).code).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(3000);
    expect(holder.lines.find((l) => l.msg === "task released")).toMatchObject({ jobId: job.id });
    expect(await other.waitFor(isLeased)).toMatchObject({ jobId: job.id, attempt: 1 });

    const done = await waitForJob(edge, tenant, job.id);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(await statusTrail(edge, tenant, job.id)).toEqual([
      "queued",
      "running",
      "queued(released)",
      "running",
      "succeeded",
    ]);
    // Taken at once: not after a retry backoff (8 s or more) or a lease expiry (3 s here).
    const events = (await jobEvents(edge, tenant, job.id)).filter((e) => e.type === "status");
    const released = events.findIndex((e) => e.data.reason === "released");
    const waited =
      Date.parse(events[released + 1].createdAt) - Date.parse(events[released].createdAt);
    expect(waited, `taken ${waited} ms after the release`).toBeLessThan(2000);
    expect(await tokensOf(tenant, job.id)).toEqual(await expectedFor(sent));
  });

  it("waits out the edge and the bucket going away mid-task, losing nothing", async () => {
    const tenant = await edge.tenant("outage");
    const worker = startWorker(tenant, "w-outage", { batchSize: 1 });
    await worker.waitFor((l) => l.msg === "revq-worker started");
    const { job, sent } = await encodeJob(tenant, 48, 700);
    await worker.waitFor(isLeased);
    await edge.stop();
    const downAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await edge.start();
    const done = await waitForJob(edge, tenant, job.id);
    expect(done.status).toBe("succeeded");
    const completed = await worker.waitFor((l) => l.msg === "task completed");
    expect(Date.parse(String(completed.time))).toBeGreaterThan(downAt);
    const trail = await statusTrail(edge, tenant, job.id);
    expect(trail.filter((s) => s === "succeeded")).toHaveLength(1);
    expect(await tokensOf(tenant, job.id)).toEqual(await expectedFor(sent));
    expect(worker.lines.some((l) => /call failed; retrying|heartbeat failed/.test(l.msg))).toBe(
      true,
    );
    const { job: next } = await encodeJob(tenant, 1, 800);
    expect((await waitForJob(edge, tenant, next.id)).status).toBe("succeeded");
  });
});

/**
 * A PNG whose structure is intact (the edge's upload checks pass: chunks, CRCs, IEND) but whose
 * compressed pixels are garbage, so that only decoding finds out.
 */
function corruptPixels(png: Uint8Array): Uint8Array {
  const out = png.slice();
  const view = new DataView(out.buffer);
  for (let at = 8; at < out.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...out.subarray(at + 4, at + 8));
    if (type === "IDAT") {
      const data = out.subarray(at + 8, at + 8 + length);
      for (let i = 2; i < data.length; i++) data[i] = (i * 131) & 0xff;
      view.setUint32(at + 8 + length, crc32(out.subarray(at + 4, at + 8 + length)));
      return out;
    }
    at += 12 + length;
  }
  throw new Error("no IDAT chunk");
}
