import { env } from "cloudflare:workers";
import {
  bucketKeys,
  type GrantedObject,
  type LeasedTask,
  type ObjectRequest,
  sha256Hex,
} from "@revq/shared";
import { describe, expect, it } from "vitest";
import { configOf } from "../../edge/src/config.ts";
import { grantObjects } from "../../edge/src/services/objects/grants.ts";
import { added, addIds, createDataset } from "./fixtures/datasets.ts";
import {
  createEncodeJob,
  lease,
  newWorld,
  uploadImages,
  type World,
  workerCall,
} from "./fixtures/jobs.ts";
import { call, expectProblem, json } from "./helpers.ts";

const objects = (key: string, task: LeasedTask, asked: ObjectRequest[], leaseId = task.leaseId) =>
  workerCall(key, `/tasks/${task.taskId}/objects`, { leaseId, objects: asked });

async function granted(key: string, task: LeasedTask, asked: ObjectRequest[]) {
  const res = await objects(key, task, asked);
  expect(res.status).toBe(200);
  return ((await res.json()) as { objects: GrantedObject[] }).objects;
}

async function encodeTask(world: World) {
  await createEncodeJob(world);
  const [task] = await lease(world.workerKey, { kinds: ["encode"] });
  if (task.payload.kind !== "encode") throw new Error("kind");
  return { task, payload: task.payload };
}

/** A leased train task on a dataset of 4 of the world's images. */
async function trainTask(world: World) {
  const ids = await uploadImages(world.apiKey, 4);
  const dataset = await createDataset(world.apiKey);
  await added(await addIds(world.apiKey, dataset.id, ids));
  const res = await call("/v1/jobs", {
    ...json({ kind: "train", inputs: { dataset: dataset.id } }),
    key: world.apiKey,
  });
  expect(res.status).toBe(202);
  const tasks = await lease(world.workerKey, { max: 16 });
  const task = tasks.find((t) => t.kind === "train");
  if (task?.payload.kind !== "train") throw new Error("no train task");
  return { task, payload: task.payload };
}

const sha = "ab".repeat(32);

describe("POST /v1/worker/tasks/{id}/objects", () => {
  it("grants a leased task's first inputs with its lease: GET URLs of an encode task's images", async () => {
    const world = await newWorld();
    await createEncodeJob(world, 3);
    const [task] = await lease(world.workerKey, { kinds: ["encode"] });
    if (task.payload.kind !== "encode") throw new Error("kind");
    const keys = task.payload.images.map((i) => i.bucketKey);
    expect(task.objects.map((o) => [o.method, o.key])).toEqual(keys.map((k) => ["GET", k]));
    const url = new URL(task.objects[0].url);
    expect(`${url.origin}${url.pathname}`).toBe(`https://s3.test/revq/${keys[0]}`);
    expect(Date.parse(task.objects[0].expiresAt)).toBeGreaterThan(Date.now() + 590_000);
  });

  it("signs a URL for each object the task names, a put for its checksum only", async () => {
    const world = await newWorld();
    const { task, payload } = await encodeTask(world);
    const [image, manifest, file, output] = await granted(world.workerKey, task, [
      { method: "GET", key: payload.images[0].bucketKey },
      { method: "GET", key: payload.tokenizer.manifestKey },
      { method: "GET", key: `${payload.tokenizer.filesPrefix}codebook.safetensors` },
      { method: "PUT", key: payload.output.tokens, sha256: sha },
    ]);
    expect(image.method).toBe("GET");
    expect(manifest.key).toBe(payload.tokenizer.manifestKey);
    expect(file.headers).toEqual({});
    const url = new URL(image.url);
    expect(`${url.origin}${url.pathname}`).toBe(
      `https://s3.test/revq/${payload.images[0].bucketKey}`,
    );
    expect(url.searchParams.get("X-Amz-Expires")).toBe("600");
    expect(url.searchParams.get("X-Amz-Credential")).toMatch(/^test-access-key\//);
    const expires = Date.parse(image.expiresAt) - Date.now();
    expect(expires).toBeGreaterThan(590_000);
    expect(expires).toBeLessThanOrEqual(600_000);
    // The checksum is one of the signed headers: another body's checksum breaks the signature.
    expect(output.headers).toEqual({ "x-amz-checksum-sha256": btoa("\xab".repeat(32)) });
    expect(new URL(output.url).searchParams.get("X-Amz-SignedHeaders")).toBe(
      "host;x-amz-checksum-sha256",
    );
  });

  it("refuses what the task does not name: another tenant's image, its tokenizer's files for writing, other keys", async () => {
    const world = await newWorld();
    const other = await newWorld();
    const [othersImage] = await uploadImages(other.apiKey, 1);
    const { task, payload } = await encodeTask(world);
    const refused: [ObjectRequest, RegExp][] = [
      [{ method: "GET", key: bucketKeys.image(other.id, othersImage) }, /its payload does not/],
      [{ method: "GET", key: bucketKeys.image(world.id, othersImage) }, /its payload does not/],
      [
        { method: "PUT", key: `${payload.tokenizer.filesPrefix}codebook.safetensors`, sha256: sha },
        /may not write/,
      ],
      [{ method: "PUT", key: payload.images[0].bucketKey, sha256: sha }, /may not write/],
      [{ method: "GET", key: payload.output.tokens }, /may not read/],
      [{ method: "GET", key: `${payload.tokenizer.filesPrefix}../../x` }, /not a plain bucket key/],
      [{ method: "GET", key: `${payload.tokenizer.filesPrefix}a//b` }, /not a plain bucket key/],
      [
        { method: "PUT", key: bucketKeys.tokenizerFile("cd".repeat(32), "x"), sha256: sha },
        /its payload does not/,
      ],
    ];
    for (const [object, detail] of refused) {
      const res = await objects(world.workerKey, task, [
        { method: "GET", key: payload.images[0].bucketKey },
        object,
      ]);
      expect((await expectProblem(res, 403, "object-not-granted")).detail).toMatch(detail);
    }
  });

  it("answers only the task's current holder, in bounded batches", async () => {
    const world = await newWorld();
    const other = await newWorld();
    const { task, payload } = await encodeTask(world);
    const get = { method: "GET" as const, key: payload.images[0].bucketKey };
    await expectProblem(await objects(other.workerKey, task, [get]), 404, "task-not-found");
    await expectProblem(
      await objects(world.workerKey, task, [get], "lse_other"),
      409,
      "lease-lost",
    );
    await expectProblem(await objects(world.apiKey, task, [get]), 403, "wrong-key-kind");
    await expectProblem(
      await objects(world.workerKey, task, Array(65).fill(get)),
      400,
      "invalid-request",
    );
    await expectProblem(await objects(world.workerKey, task, []), 400, "invalid-request");
  });

  it("lets a train task read its dataset and write its latents, checkpoints and a new tokenizer's files", async () => {
    const world = await newWorld();
    const { task, payload } = await trainTask(world);
    const [listingImage] = await uploadImages(world.apiKey, 1);
    const newHash = "cd".repeat(32);
    const answered = await granted(world.workerKey, task, [
      { method: "GET", key: payload.dataset.listing },
      { method: "GET", key: bucketKeys.image(world.id, listingImage) },
      { method: "GET", key: bucketKeys.tenantFiles(world.id, "photos/1.png") },
      { method: "GET", key: `${payload.dataset.latents}shard-000000.safetensors` },
      { method: "PUT", key: `${payload.dataset.latents}shard-000000.safetensors`, sha256: sha },
      { method: "PUT", key: `${payload.output.checkpoints}state/checkpoint.json`, sha256: sha },
      {
        method: "PUT",
        key: bucketKeys.tokenizerFile(newHash, "codebook.safetensors"),
        sha256: sha,
      },
    ]);
    expect(answered).toHaveLength(7);
    const other = await newWorld();
    const [othersImage] = await uploadImages(other.apiKey, 1);
    await expectProblem(
      await objects(world.workerKey, task, [
        { method: "GET", key: bucketKeys.image(other.id, othersImage) },
      ]),
      403,
      "object-not-granted",
    );
  });

  it("lets a train task repeat a registered tokenizer's file, never change it", async () => {
    const world = await newWorld();
    const { task } = await trainTask(world);
    // The public tokenizer every world registers: its codebook is pinned by the manifest.
    const codebook = world.tiny.files.get("codebook.safetensors") as Uint8Array;
    const key = bucketKeys.tokenizerFile(world.tiny.hash, "codebook.safetensors");
    const same = await granted(world.workerKey, task, [
      { method: "PUT", key, sha256: await sha256Hex(codebook) },
    ]);
    expect(same).toHaveLength(1);
    const changed = await expectProblem(
      await objects(world.workerKey, task, [{ method: "PUT", key, sha256: sha }]),
      403,
      "object-not-granted",
    );
    expect(changed.detail).toMatch(/registered and pins other bytes/);
    await expectProblem(
      await objects(world.workerKey, task, [
        { method: "PUT", key: bucketKeys.tokenizerManifest(world.tiny.hash), sha256: sha },
      ]),
      403,
      "object-not-granted",
    );
  });

  it("says that an edge without the bucket's S3 key cannot grant URLs", async () => {
    const world = await newWorld();
    const { task, payload } = await encodeTask(world);
    const unconfigured = { ...env, S3_SECRET_ACCESS_KEY: undefined };
    await expect(
      grantObjects(
        unconfigured,
        { tenantId: world.id, keyId: "key" },
        task.taskId,
        { leaseId: task.leaseId, objects: [{ method: "GET", key: payload.images[0].bucketKey }] },
        configOf(env),
        "http://edge.test",
      ),
    ).rejects.toMatchObject({ status: 503, code: "bucket-urls-not-configured" });
  });
});
