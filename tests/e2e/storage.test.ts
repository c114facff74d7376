/**
 * A worker's bucket: presigned URLs the edge grants per task (gpu-worker/src/storage.ts), against
 * wrangler dev's S3 door. The worker holds no bucket credential, so what its task does not name
 * (another tenant's image, a public tokenizer's files, another key) it cannot read or write.
 */
import { bucketKeys, type LeasedTask, sha256Hex } from "@revq/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { EdgeClient } from "../../gpu-worker/src/client.ts";
import { createLogger } from "../../gpu-worker/src/log.ts";
import { type Bucket, grantedBucket } from "../../gpu-worker/src/storage.ts";
import { LocalEdge } from "./support/edge.ts";
import { s3DoorBucket } from "./support/s3-door.ts";
import { syntheticImage } from "./support/tiny-tokenizer.ts";
import { createJob, type Tenant, tinyTokenizerOn, upload } from "./support/world.ts";

const log = createLogger({ format: "json", write: () => undefined });
const edge = new LocalEdge();
const backoff = { initialMs: 50, maxMs: 400 };
let tenant: Tenant;
let other: Tenant;
let tokenizer: Awaited<ReturnType<typeof tinyTokenizerOn>>;
let imageId: string;
let othersImageId: string;
let task: LeasedTask;
let client: EdgeClient;

/** The bucket as `task`'s holder sees it. */
function bucketOf(held: LeasedTask, key = tenant.workerKey): Bucket {
  const edgeClient = new EdgeClient({ baseUrl: edge.url, workerKey: key, log, backoff });
  return grantedBucket(
    (objects) =>
      edgeClient.objects(
        held.taskId,
        { leaseId: held.leaseId, objects },
        { deadline: Date.now() + 5000 },
      ),
    { log, backoff, retryMs: 5000 },
  );
}

beforeAll(async () => {
  await selectBackend("wasm"); // builds the tiny tokenizer
  await edge.start();
  [tenant, other] = await Promise.all([edge.tenant("storage"), edge.tenant("storage-other")]);
  tokenizer = await tinyTokenizerOn(edge);
  const image = { bytes: await syntheticImage(1, "png"), format: "png" as const };
  [[imageId], [othersImageId]] = await Promise.all([
    upload(edge, tenant, [image]),
    upload(edge, other, [image]),
  ]);
  await createJob(edge, tenant, {
    kind: "encode",
    tokenizer: tokenizer.id,
    inputs: { images: [imageId] },
  });
  client = new EdgeClient({ baseUrl: edge.url, workerKey: tenant.workerKey, log, backoff });
  [task] = (await client.lease({ kinds: ["encode"], max: 1, waitSeconds: 0 })).tasks;
});
afterAll(() => edge.dispose());

describe("a worker's bucket: presigned URLs for its task's objects only", () => {
  it("reads the task's inputs and its tokenizer, and writes its output", async () => {
    const bucket = bucketOf(task);
    expect(task.payload.kind).toBe("encode");
    if (task.payload.kind !== "encode") return;
    const image = await bucket.get(task.payload.images[0].bucketKey);
    expect(image).toEqual(await syntheticImage(1, "png"));
    const manifest = await bucket.get(task.payload.tokenizer.manifestKey);
    expect(await sha256Hex(manifest)).toBe(tokenizer.built.hash);
    const [path, bytes] = [...tokenizer.built.files][0];
    expect(await bucket.get(`${task.payload.tokenizer.filesPrefix}${path}`)).toEqual(bytes);

    const output = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
    await bucket.put(task.payload.output.tokens, output, "application/octet-stream");
    expect(await s3DoorBucket(edge.s3).get(task.payload.output.tokens)).toEqual(output);
  });

  it("asks for the URLs of objects wanted together in one call", async () => {
    let calls = 0;
    const bucket = grantedBucket(
      (objects) => {
        calls++;
        return client.objects(task.taskId, { leaseId: task.leaseId, objects });
      },
      { log, backoff },
    );
    if (task.payload.kind !== "encode") return;
    const { tokenizer: ref } = task.payload;
    await Promise.all([
      bucket.get(ref.manifestKey),
      ...[...tokenizer.built.files.keys()].map((path) => bucket.get(`${ref.filesPrefix}${path}`)),
    ]);
    expect(calls).toBe(1);
  });

  it("reads a task's images first through the URLs its lease carried, then asks anew", async () => {
    if (task.payload.kind !== "encode") throw new Error("not an encode task");
    const key = task.payload.images[0].bucketKey;
    expect(task.objects.map((o) => [o.method, o.key])).toEqual([["GET", key]]);
    let asked = 0;
    const bucket = grantedBucket(
      (objects) => {
        asked += objects.length;
        return client.objects(task.taskId, { leaseId: task.leaseId, objects });
      },
      { log, backoff, granted: task.objects },
    );
    const image = await syntheticImage(1, "png");
    expect(await bucket.get(key)).toEqual(image);
    expect(asked).toBe(0);
    // Each granted URL serves one try: a second read of the same key asks for a URL.
    expect(await bucket.get(key)).toEqual(image);
    expect(asked).toBe(1);
  });

  it("refuses another tenant's image, another key and a public tokenizer's files", async () => {
    const bucket = bucketOf(task);
    const denied = { name: "BucketError", code: "denied" };
    await expect(bucket.get(bucketKeys.image(other.tenantId, othersImageId))).rejects.toMatchObject(
      denied,
    );
    await expect(
      bucket.get(bucketKeys.image(tenant.tenantId, "img_00000000000000000000000000")),
    ).rejects.toMatchObject(denied);
    if (task.payload.kind !== "encode") return;
    const { tokenizer: ref } = task.payload;
    // The task reads its tokenizer; it may not write it.
    const [path] = [...tokenizer.built.files.keys()];
    await expect(
      bucket.put(`${ref.filesPrefix}${path}`, new Uint8Array([1]), "application/octet-stream"),
    ).rejects.toMatchObject(denied);
    await expect(
      bucket.put(`${task.payload.output.tokens}.other`, new Uint8Array([1]), "text/plain"),
    ).rejects.toMatchObject(denied);
    // A key that a URL would resolve to another one.
    await expect(
      bucket.get(`${task.payload.images[0].bucketKey}/../../../${other.tenantId}`),
    ).rejects.toMatchObject(denied);
  });

  it("grants nothing to another tenant's worker key, nor on a lost lease", async () => {
    await expect(bucketOf(task, other.workerKey).get("anything")).rejects.toMatchObject({
      name: "EdgeError",
      code: "task-not-found",
    });
    await expect(bucketOf({ ...task, leaseId: "lse_nope" }).get("anything")).rejects.toMatchObject({
      name: "EdgeError",
      code: "lease-lost",
    });
  });

  it("refuses a put whose bytes are not those it was signed for", async () => {
    if (task.payload.kind !== "encode") return;
    const [granted] = (
      await client.objects(task.taskId, {
        leaseId: task.leaseId,
        objects: [{ method: "PUT", key: task.payload.output.tokens, sha256: "0".repeat(64) }],
      })
    ).objects;
    // Another checksum than the signed one: the signature no longer matches.
    const response = await fetch(granted.url, {
      method: "PUT",
      body: new Uint8Array([1, 2, 3]),
      headers: { "x-amz-checksum-sha256": btoa("x".repeat(32)) },
    });
    expect(response.status).toBe(403);
  });

  it("says not-found for a missing object, without retrying", async () => {
    const bucket = bucketOf(task);
    const started = Date.now();
    if (task.payload.kind !== "encode") return;
    await expect(
      bucket.get(`${task.payload.tokenizer.filesPrefix}missing.safetensors`),
    ).rejects.toMatchObject({ name: "BucketError", code: "not-found" });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("waits for a bucket that went away and reads once it is back", async () => {
    if (task.payload.kind !== "encode") return;
    const key = task.payload.images[0].bucketKey;
    const bucket = bucketOf(task);
    await edge.stop();
    await expect(bucket.get(key, { deadline: Date.now() + 300 })).rejects.toMatchObject({
      code: "unreachable",
    });
    const reading = bucket.get(key, { deadline: Date.now() + 60_000 });
    reading.catch(() => undefined); // awaited below, after the restart
    await edge.start();
    expect(await reading).toEqual(await syntheticImage(1, "png"));
  });
});
