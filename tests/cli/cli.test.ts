/**
 * The revq bin as users run it, against the real stack: wrangler dev (LocalEdge) with the tiny
 * tokenizer registered (and the default for training) and one revq-worker process. What every
 * command prints for scripts (--json), what it writes, and the exit code and message of each
 * kind of failure.
 */

import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Job,
  manifestFiles,
  manifestHash as manifestHashOf,
  parseManifest,
  parseSafetensors,
  readNpy,
  readTensor,
  readTokenJson,
  readTokenStream,
  writeNpy,
} from "@revq/shared";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { freePort, LocalEdge } from "../e2e/support/edge.ts";
import { buildTinyTokenizer, syntheticImage } from "../e2e/support/tiny-tokenizer.ts";
import { WorkerProcess } from "../e2e/support/worker-process.ts";
import { registerTokenizer as registerOn, type Tenant } from "../e2e/support/world.ts";
import { type CliRun, json, registerTokenizer, revq } from "./support/run-cli.ts";
import { writeTokenizerFolder } from "./support/tokenizer-folder.ts";

let edge: LocalEdge;
const dir = mkdtempSync(join(tmpdir(), "revq-cli-"));
let tenant: Tenant;
let worker: WorkerProcess;
let tokenizer: {
  id: string;
  hash: string;
  latentShape: { channels: number; height: number; width: number };
};
let env: Record<string, string>;
/** The dataset `revq train trainset` made, trained on again by `revq train --dataset`. */
let trainset: string;
const tinyDir = join(dir, "tiny-tokenizer");

// As tests/gpu-worker/train-task.test.ts: 20 latents in batches of 8, a tiny rectifier.
const SMALL_TRAINING = [
  ...["--tokens", "128", "--codes", "16", "--epochs", "2", "--batch-size", "8", "--seed", "2"],
  ...["--params", '{"rectifier": {"channels": 16, "blocks": 1, "headDim": 8, "multiscales": [5]}}'],
];

const run = (args: string[], extraEnv: Record<string, string> = {}) =>
  revq(args, { cwd: dir, env: { ...env, ...extraEnv } });

function expectFailure(r: CliRun, code: number, message: RegExp): void {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(code);
  expect(r.stderr).toMatch(message);
}

beforeAll(async () => {
  await selectBackend("wasm");
  const built = await buildTinyTokenizer();
  edge = new LocalEdge({
    ALLOW_LOOPBACK_WEBHOOKS: "true",
    // A train job that names no tokenizer trains on the tiny one.
    DEFAULT_TOKENIZER: built.hash,
    // Lower than revq's defaults, so that `revq train` of 22 images meets an edge whose limit
    // it does not know; its shards of 8 images make 3 extract jobs.
    MAX_DATASET_ADD_IMAGES: "12",
    LATENT_SHARD_SIZE: "8",
    EXTRACT_TASK_SHARDS: "1",
  });
  await edge.start();
  tenant = await edge.tenant("cli");
  tokenizer = {
    id: await registerOn(edge, built),
    hash: built.hash,
    latentShape: built.manifest.vae.latentShape,
  };
  writeTokenizerFolder(tinyDir, built);
  worker = new WorkerProcess(edge, { name: "cli-worker", workerKey: tenant.workerKey });
  await worker.waitFor((l) => l.msg === "revq-worker started");
  env = { REVQ_URL: edge.url, REVQ_API_KEY: tenant.apiKey };
  mkdirSync(join(dir, "photos"));
  for (let i = 0; i < 3; i++) {
    writeFileSync(join(dir, "photos", `p${i}.png`), await syntheticImage(500 + i));
  }
  mkdirSync(join(dir, "trainset"));
  for (let i = 0; i < 22; i++) {
    writeFileSync(join(dir, "trainset", `${i}.png`), await syntheticImage(900 + i));
  }
});

afterAll(async () => {
  await worker?.stop();
  await edge.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("revq against a running edge", () => {
  it("tokenizes a folder in each format, and decodes the result", async () => {
    const rvq = await run(["tokenize", "photos", "--json", "-o", "t.rvqt"]);
    expect(rvq.code, rvq.stderr).toBe(0);
    const result = json<{ job: string; images: { record: number; file: string }[] }>(rvq);
    expect(result.images.map((i) => i.file)).toEqual([
      "photos/p0.png",
      "photos/p1.png",
      "photos/p2.png",
    ]);

    const asJson = await run(["tokenize", "photos", "--format", "json", "-o", "t.json"]);
    expect(asJson.code, asJson.stderr).toBe(0);
    expect(asJson.stdout).toMatch(/^3 images → 128 tokens each \(64 codes per group\) → t\.json/);
    const doc = readTokenJson(JSON.parse(readFileSync(join(dir, "t.json"), "utf8")));
    expect([doc.header.recordCount, doc.header.tokenizerHash]).toEqual([3, tokenizer.hash]);

    const npy = await run(["tokenize", "photos", "--format", "npy", "-o", "t.npy"]);
    expect(npy.code, npy.stderr).toBe(0);
    expect(npy.stderr).toMatch(/^photos: 3 images in 1 folder\n/);
    const ids = readNpy(new Uint8Array(readFileSync(join(dir, "t.npy"))));
    expect(ids.shape).toEqual([3, 128]);
    // Same images, same tokenizer: the same ids whichever form carried them.
    expect([...ids.data]).toEqual([...doc.tokens]);
    // The next step it suggests works: a .npy of ids names no tokenizer, the job does.
    const next = npy.stdout.match(/next: revq (decode [^,]+),/) as RegExpMatchArray;
    expect(next?.[1]).toMatch(/^decode --job job_\w+$/);
    const suggested = await run([...next[1].split(" "), "-o", "suggested.npy"]);
    expect(suggested.code, suggested.stderr).toBe(0);

    const fromFile = await run([
      "decode",
      "t.json",
      "--output",
      "ids",
      "--format",
      "npy",
      "-o",
      "ids.npy",
    ]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect([...readNpy(new Uint8Array(readFileSync(join(dir, "ids.npy")))).data]).toEqual([
      ...doc.tokens,
    ]);
    const fromJob = await run([
      "decode",
      "--job",
      result.job,
      "--format",
      "safetensors",
      "-o",
      "l.st",
    ]);
    expect(fromJob.code, fromJob.stderr).toBe(0);
    const latents = parseSafetensors(new Uint8Array(readFileSync(join(dir, "l.st"))));
    expect(readTensor(latents, "latents").shape).toEqual([3, 8, 8, 8]);
    // "-" is stdout, for pipes.
    const piped = await run(["decode", "t.rvqt", "--output", "ids", "-o", "-"]);
    expect(readTokenJson(JSON.parse(piped.stdout)).tokens).toEqual(doc.tokens);
  });

  it("reconstructs from images (named after them) and from an encode job (by record)", async () => {
    const fromImages = await run(["reconstruct", "photos/p0.png", "photos/p2.png", "-o", "r1"]);
    expect(fromImages.code, fromImages.stderr).toBe(0);
    expect(fromImages.stdout).toMatch(/^2 PNGs in r1\/ \(job job_\w+\)\n$/);
    for (const name of ["p0.png", "p2.png"]) {
      const meta = await sharp(join(dir, "r1", name)).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(["png", 32, 32]);
    }
    const encode = json<{ jobs: { id: string }[] }>(
      await run(["jobs", "--kind", "encode", "--limit", "1", "--json"]),
    );
    const fromJob = await run(["reconstruct", encode.jobs[0].id, "-o", "r2", "--json"]);
    expect(fromJob.code, fromJob.stderr).toBe(0);
    expect(json<{ files: string[] }>(fromJob).files).toEqual(["r2/0000.png", "r2/0001.png"]);
    expectFailure(
      await run(["reconstruct", json<{ job: string }>(fromJob).job]),
      2,
      /job_\w+ is a reconstruct job, not an encode job/,
    );
  });

  it("reconstructs a token file: a token stream, and a .npy of ids with its tokenizer named", async () => {
    const fromStream = await run(["reconstruct", "t.rvqt", "-o", "r3", "--json"]);
    expect(fromStream.code, fromStream.stderr).toBe(0);
    expect(json<{ files: string[] }>(fromStream).files).toEqual([
      "r3/0000.png",
      "r3/0001.png",
      "r3/0002.png",
    ]);
    const fromNpy = await run([
      "reconstruct",
      "t.npy",
      "--tokenizer",
      tokenizer.id,
      "-o",
      "r4",
      "--latents",
    ]);
    expect(fromNpy.code, fromNpy.stderr).toBe(0);
    expect(fromNpy.stdout).toMatch(/^3 PNGs and latents\.npy in r4\/ /);
    // The latents the PNGs were decoded from, one per record, in the VAE's own (C, H, W).
    const latents = readNpy(new Uint8Array(readFileSync(join(dir, "r4", "latents.npy"))));
    const { channels, height, width } = tokenizer.latentShape;
    expect({ dtype: latents.dtype, shape: latents.shape }).toEqual({
      dtype: "<f4",
      shape: [3, channels, height, width],
    });
    expect((latents.data as Float32Array).every(Number.isFinite)).toBe(true);
    expect(fromNpy.stderr).toMatch(/3 records of t\.npy uploaded as tks_\w+/);
    // The same ids give the same pixels, whichever form carried them.
    for (const name of ["0000.png", "0002.png"]) {
      expect(readFileSync(join(dir, "r4", name))).toEqual(readFileSync(join(dir, "r3", name)));
    }
    writeFileSync(join(dir, "floats.npy"), writeNpy(new Float32Array(4), [1, 4]));
    expectFailure(
      await run(["reconstruct", "floats.npy", "--tokenizer", tokenizer.id]),
      2,
      /floats\.npy is not a token file: token ids are integers/,
    );
  });

  it("lists, shows, follows and cancels jobs", async () => {
    const list = json<{ jobs: { id: string; kind: string; status: string }[] }>(
      await run(["jobs", "--kind", "encode", "--limit", "2", "--json"]),
    );
    expect(list.jobs).toHaveLength(2);
    expect(list.jobs.every((j) => j.kind === "encode" && j.status === "succeeded")).toBe(true);
    const id = list.jobs[0].id;
    const events = await run(["jobs", "events", id]);
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(
      /status {4}queued\n.*status {4}running\n.*metrics {3}images=\d /s,
    );
    expect((await run(["jobs", "wait", id])).code).toBe(0);

    // A job no worker takes (the worker is stopped), cancelled: waiting for it then fails (1).
    await worker.stop();
    const created = await edge.api<{ id: string }>("POST", "/v1/jobs", tenant.apiKey, {
      kind: "reconstruct",
      tokenizer: tokenizer.id,
      inputs: { job: id },
    });
    const cancelled = await run(["jobs", "cancel", created.id]);
    expect(cancelled.stdout).toBe(`${created.id} cancelled\n`);
    expectFailure(
      await run(["jobs", "wait", created.id]),
      1,
      new RegExp(`job ${created.id} was cancelled`),
    );
    worker = new WorkerProcess(edge, { name: "cli-worker-2", workerKey: tenant.workerKey });
    await worker.waitFor((l) => l.msg === "revq-worker started");
  });

  it("lists and shows tokenizers", async () => {
    const list = await run(["tokenizers"]);
    expect(list.stdout).toBe(
      `${tokenizer.id}  tiny-test-identity  128 tokens × 64 codes  public\n`,
    );
    const shown = await run(["tokenizers", "show", tokenizer.hash, "--manifest", "m.json"]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "m.json"), "utf8")).name).toBe("tiny-test-identity");
    const byName = await run(["tokenizers", "show", "tiny-test-identity", "--json"]);
    expect(json<{ id: string }>(byName).id).toBe(tokenizer.id);
  });

  it("shows, sets and clears the tenant's default tokenizer", async () => {
    const deployment = `${tokenizer.id}  tiny-test-identity  (the deployment's default)\n`;
    expect((await run(["tokenizers", "default"])).stdout).toBe(deployment);
    expect((await run(["tokenizers", "default", "tiny-test-identity"])).stdout).toBe(
      `${tokenizer.id}  tiny-test-identity  (this tenant's default)\n`,
    );
    expect((await run(["tokenizers", "default", "--clear"])).stdout).toBe(deployment);
    expectFailure(await run(["tokenizers", "default", "tok_nope"]), 4, /tok_nope/);
  });

  it("registers a webhook, follows and redelivers its deliveries, removes it", async () => {
    const port = await freePort();
    const added = json<{ id: string; secret: string }>(
      await run([
        "webhooks",
        "add",
        `http://127.0.0.1:${port}/hook`,
        "--events",
        "job.succeeded",
        "--json",
      ]),
    );
    expect(added.secret).toMatch(/^whsec_/);
    expect((await run(["webhooks"])).stdout).toBe(
      `${added.id}  http://127.0.0.1:${port}/hook  job.succeeded\n`,
    );
    const deliveries = await run(["webhooks", "deliveries", added.id]);
    expect(deliveries.stdout).toBe("no deliveries\n");

    // A job ends: the endpoint (a real server here) is told, the delivery recorded, redelivered.
    const received: string[] = [];
    const receiver = createServer((req, res) => {
      received.push(String(req.headers["webhook-id"]));
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => receiver.listen(port, "127.0.0.1", resolve));
    try {
      const job = json<{ job: string }>(
        await run([
          "tokenize",
          "photos/p1.png",
          "--tokenizer",
          tokenizer.id,
          "-o",
          "w.rvqt",
          "--json",
        ]),
      ).job;
      // Recorded once the edge has the receiver's answer.
      const deadline = Date.now() + 30_000;
      let listed: { deliveries: { id: string; status: string; jobId: string }[] };
      for (;;) {
        listed = json(await run(["webhooks", "deliveries", "--job", job, "--json"]));
        if (listed.deliveries[0]?.status === "succeeded" || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(listed.deliveries).toMatchObject([{ jobId: job, status: "succeeded" }]);
      const again = await run(["webhooks", "redeliver", listed.deliveries[0].id]);
      expect(again.stdout).toMatch(/^redelivering as \w+\n$/);
      while (received.length < 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // The same message twice: receivers deduplicate on webhook-id.
      expect(received).toHaveLength(2);
      expect(received[1]).toBe(received[0]);
      expect((await run(["webhooks", "deliveries", added.id])).stdout).toMatch(
        /job\.succeeded +succeeded +1 attempt last: 204 at /,
      );
    } finally {
      receiver.close();
    }
    expect((await run(["webhooks", "remove", added.id])).code).toBe(0);
    expect((await run(["webhooks", "--json"])).stdout).toContain('"webhooks": []');
    expectFailure(
      await run(["webhooks", "add", "http://127.0.0.1/x", "--events", "job.done"]),
      2,
      /unknown event job\.done/,
    );
  });

  it("creates a dataset, adds a folder in batches, lists and shows it", async () => {
    const created = json<{ id: string; imageCount: number }>(
      await run(["datasets", "create", "cats", "--json"]),
    );
    expect(created).toMatchObject({ id: expect.stringMatching(/^dst_/), imageCount: 0 });
    const added = await run(["datasets", "add", created.id, "trainset", "--max-images", "10"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toMatch(
      /^trainset: 22 images in 1 folder\nbatch 1\/3: 10 images \([\d.]+ KiB\) added, 10\/22\nbatch 2\/3: 10 images .* 20\/22\nbatch 3\/3: 2 images .* 22\/22\n$/,
    );
    expect(added.stdout).toMatch(
      new RegExp(
        `^added 22 images in 3 requests: ${created.id} {2}cats {2}22 images, [\\d.]+ KiB\n$`,
      ),
    );
    const shown = json<{ imageCount: number; source: string }>(
      await run(["datasets", "show", created.id, "--json"]),
    );
    expect(shown).toMatchObject({ imageCount: 22, source: "upload" });
    // For scripts: each file with its image id, and the new totals.
    const more = json<{ added: number; images: { file: string }[]; dataset: unknown }>(
      await run(["datasets", "add", created.id, "photos", "--json"]),
    );
    expect(more).toMatchObject({ added: 3, dataset: { imageCount: 25 } });
    expect(more.images).toEqual(
      ["p0", "p1", "p2"].map((p) => ({
        file: `photos/${p}.png`,
        imageId: expect.stringMatching(/^img_/),
      })),
    );
    const listed = await run(["datasets"]);
    expect(listed.stdout).toMatch(new RegExp(`^${created.id} {2}cats {2}25 images`, "m"));
  });

  it("stops at a bad file with the edge's detail, the file, and what was added; deletes", async () => {
    mkdirSync(join(dir, "mixed"));
    for (const name of ["p0.png", "p1.png"]) {
      writeFileSync(join(dir, "mixed", name), readFileSync(join(dir, "photos", name)));
    }
    writeFileSync(join(dir, "mixed", "z-bad.png"), "not an image at all");
    const { id } = json<{ id: string }>(await run(["datasets", "create", "mixed", "--json"]));
    const add = ["datasets", "add", id, "mixed", "--max-images", "2"];
    const r = await run(add);
    expectFailure(r, 4, /POST \/v1\/datasets\/dst_\w+\/images: 415 tar entry "3-z-bad\.png"/);
    expect(r.stderr).toMatch(/^mixed: 3 images in 1 folder\nbatch 1\/2: 2 images .* added, 2\/3\n/);
    expect(r.stderr).toContain(
      [
        "  → the file: mixed/z-bad.png",
        `  → batch 2/2 was not added; images 1–2 (sent before it) are in dataset ${id}, nothing after them`,
        `  → add the rest: revq datasets add ${id} mixed --max-images 2 --skip 2\n`,
      ].join("\n"),
    );
    expect(json<{ error: { code: string } }>(await run([...add, "--json"])).error.code).toBe(
      "image.unknown-format",
    );
    expect((await run(["datasets", "show", id])).stdout).toMatch(/holds {6}4 images/);

    // An edge that takes fewer images per request than asked: split once, then said plainly.
    const tooMany = await run(["datasets", "add", id, "trainset", "photos"]);
    expectFailure(tooMany, 4, /413 .*limit is 12/);
    expect(tooMany.stderr).toMatch(
      /^trainset: 22 images in 1 folder\nphotos: 3 images in 1 folder\nbatch 1\/1: the edge found it too large \(too-many-images\); sending it in halves\n/,
    );
    expect(tooMany.stderr).toMatch(/→ this edge's limits are lower than --max-images/);

    expect((await run(["datasets", "delete", id])).stdout).toBe(`deleted ${id}\n`);
    expectFailure(await run(["datasets", "show", id]), 4, /404 /);
  });

  it("trains a tokenizer remotely: a dataset of the folder, its extract jobs, epochs as they come", async () => {
    // Too few images for one batch of the default 256 (after the held-out tenth): said, and
    // nothing uploaded, before the upload the worker would refuse.
    expectFailure(
      await run(["train", "photos", "--tokenizer", tokenizer.id]),
      2,
      /^photos: 3 images in 1 folder\nrevq: 3 images \(0 held out for validation\) do not make one batch of 256\n {2}→ train on at least 284 images, or pass --batch-size 3 or less\n$/,
    );
    expect((await run(["datasets"])).stdout).not.toMatch(/ photos /);
    const trained = await run(["train", "trainset", "--name", "cli-trained", ...SMALL_TRAINING]);
    expect(trained.code, trained.stderr).toBe(0);
    // 22 images in one request are too many for this edge: sent in two halves.
    const dataset = trained.stderr.match(
      /^trainset: 22 images in 1 folder\ndataset (dst_\w+) "trainset": adding 22 images\n/,
    );
    expect(dataset, trained.stderr).not.toBeNull();
    trainset = (dataset as RegExpMatchArray)[1];
    expect(trained.stderr).toMatch(/batch 1\/1 \(second half\): 11 images .* 22\/22\n/);
    expect(trained.stderr).toMatch(
      /train job job_\w+: dataset dst_\w+ "trainset" \(22 images, .*\), the VAE of tok_\w+ \(the edge's default tokenizer\)/,
    );
    expect(trained.stdout).toMatch(/extract {3}3 extract jobs: 3 succeeded\n/);
    // Each epoch's figures as a row of one table (the tiny rectifier may make held-out MSE worse:
    // then said under its row).
    expect(trained.stdout).toMatch(
      /status {4}running\n(.*\n)*?epoch {3}loss q {3}loss r {3}held-out MSE q → r {3}PSNR {2}usage\n {4}1 {3}[\d.]+ {3}[\d.]+ +[\d.]+ → [\d.]+ .*%\n(warning: epoch 1: the rectifier made held-out latent MSE worse .*\n)? {4}2 /,
    );
    expect(trained.stdout).not.toMatch(/metrics {3}epoch=/);
    expect(trained.stdout).toMatch(/status {4}succeeded\n/);
    const made = trained.stdout.match(/^new tokenizer (tok_\w+) /m) as RegExpMatchArray;
    expect(made).not.toBeNull();
    // Its evaluation on the 2 held-out images, as the job ended and as the tokenizer shows it.
    const evaluation =
      / {2}evaluation {5}on 2 held-out latents, 2 images decoded\n {4}PSNR {9}[\d.]+ dB from tokens, .*\n {4}SSIM .*\n {4}latent MSE .*\n {4}usage .*\n {4}bits\/image {3}512\n/;
    expect(trained.stdout).toMatch(evaluation);
    expect((await run(["tokenizers", "show", made[1]])).stdout).toMatch(evaluation);
    const jobId = (trained.stderr.match(/train job (job_\w+)/) as RegExpMatchArray)[1];
    expect((await run(["jobs", "show", jobId])).stdout).toMatch(evaluation);
    const shown = json<{ name: string; owner: string; quantizer: { codesPerGroup: number } }>(
      await run(["tokenizers", "show", made[1], "--json"]),
    );
    expect(shown).toMatchObject({
      name: "cli-trained",
      owner: "tenant",
      quantizer: { codesPerGroup: 16 },
      evaluation: { heldOut: { latents: 2, images: 2 }, bitsPerImage: 512 },
    });
    // Two tokenizers now: a command that names none still works as before, with the default.
    const tokenized = await run(["tokenize", "photos/p0.png", "-o", "after-train.rvqt"]);
    expect(tokenized.code, tokenized.stderr).toBe(0);
    const after = readTokenStream(readFileSync(join(dir, "after-train.rvqt")));
    expect(after.header.tokenizerHash).toBe(tokenizer.hash);
  });

  it("renames, downloads and deletes the tokenizer the training made", async () => {
    const listed = json<{ tokenizers: { id: string; name: string; owner: string }[] }>(
      await run(["tokenizers", "--json"]),
    );
    const own = listed.tokenizers.find((t) => t.owner === "tenant") as { id: string };
    const renamed = await run(["tokenizers", "rename", own.id, "cli-renamed"]);
    expect(renamed.stdout).toMatch(new RegExp(`^${own.id}  cli-renamed  `));
    const got = await run(["tokenizers", "download", "cli-renamed", "-o", "downloaded"]);
    expect(got.code, got.stderr).toBe(0);
    const manifest = readFileSync(join(dir, "downloaded", "manifest.json"));
    const shown = json<{ manifestHash: string; files: { path: string; sha256: string }[] }>(
      await run(["tokenizers", "show", own.id, "--json"]),
    );
    expect(createHash("sha256").update(manifest).digest("hex")).toBe(shown.manifestHash);
    for (const f of shown.files) {
      const bytes = readFileSync(join(dir, "downloaded", f.path));
      expect(createHash("sha256").update(bytes).digest("hex"), f.path).toBe(f.sha256);
    }
    expect((await run(["tokenizers", "delete", "cli-renamed"])).code).toBe(0);
    expectFailure(await run(["tokenizers", "show", own.id]), 4, /No tokenizer/);
    expectFailure(
      await run(["tokenizers", "delete", tokenizer.id]),
      4,
      /only a tenant's own tokenizers/,
    );
    expectFailure(
      await run(["tokenizers", "rename", own.id]),
      2,
      /usage: revq tokenizers rename ID NAME/,
    );
  });

  it("trains on a dataset already at the edge, uploading nothing", async () => {
    const args = ["train", "--dataset", trainset, "--tokenizer", tokenizer.id];
    const small = SMALL_TRAINING.map((arg, i) =>
      SMALL_TRAINING[i - 1] === "--epochs" ? "1" : arg,
    );
    const trained = await run([...args, ...small, "--json"]);
    expect(trained.code, trained.stderr).toBe(0);
    const { job } = json<{ job: Job }>(trained);
    // The dataset's latents, extracted for the first training, are reused: no extract jobs.
    expect(job).toMatchObject({
      baseTokenizer: { id: tokenizer.id },
      tokenizer: { id: expect.stringMatching(/^tok_/) },
      inputs: { dataset: trainset },
      parameters: { epochs: 1 },
      extractJobs: [],
      status: "succeeded",
    });
    // Which tokenizer is which, and how far it got: it ended, the progress stays.
    const shown = await run(["jobs", "show", job.id]);
    expect(shown.stdout).toMatch(
      new RegExp(`\n {2}base {7}${tokenizer.id} .*\n {2}trained {4}tok_\\w+ .*\n {2}progress {3}`),
    );
  });

  it("resumes the dataset an earlier run began: only the images it lacks go up, then none", async () => {
    const { id } = json<{ id: string }>(await run(["datasets", "create", "resumed", "--json"]));
    // The first 5 of trainset/ as a folder lists them, as a run stopped after one batch left them.
    const first = ["0", "1", "10", "11", "12"].map((n) => `trainset/${n}.png`);
    expect((await run(["datasets", "add", id, ...first])).code).toBe(0);
    const small = SMALL_TRAINING.map((arg, i) =>
      SMALL_TRAINING[i - 1] === "--epochs" ? "1" : arg,
    );
    const args = ["train", "trainset", "--dataset-name", "resumed", "--tokenizer", tokenizer.id];
    const resumed = await run([...args, ...small]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(
      `dataset ${id} "resumed" holds the first 5 of the 22 images (an earlier run's): adding the other 17\n`,
    );
    expect(json(await run(["datasets", "show", id, "--json"]))).toMatchObject({ imageCount: 22 });
    const again = await run([...args, ...small]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(
      `dataset ${id} "resumed" holds all 22 images already (an earlier run's): nothing to upload\n`,
    );
    expect(json(await run(["datasets", "show", id, "--json"]))).toMatchObject({ imageCount: 22 });
    // Other images under that name: refused, not a second dataset of the same name.
    expectFailure(
      await run(["train", "photos", "--dataset-name", "resumed", "--batch-size", "1"]),
      2,
      new RegExp(
        `the dataset named "resumed" \\(${id}\\) holds other images than the first of these\n {2}→ name a new one with --dataset-name`,
      ),
    );
  });
});

describe("revq train --offline", () => {
  it("runs revq-train on this machine and writes a tokenizer folder npm start can register", async () => {
    const trained = await run([
      "train",
      "trainset",
      "--offline",
      "--vae",
      tinyDir,
      "--out",
      "offline-tok",
      "--backend",
      "wasm",
      ...SMALL_TRAINING,
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout).toMatch(/^ {4}2\/2 /m);
    const manifest = parseManifest(
      JSON.parse(readFileSync(join(dir, "offline-tok", "manifest.json"), "utf8")),
    );
    expect(manifest.quantizer).toMatchObject({ tokens: 128, codesPerGroup: 16 });

    // Uploaded under this tenant's own key: the files the edge lacks go up (a file it holds,
    // such as the remote training's identical one, is copied there), and then none.
    type Upload = {
      tokenizer: { owner: string; status: string; manifestHash: string };
      sent: string[];
    };
    const uploaded = await run(["tokenizers", "upload", "offline-tok", "--json"]);
    expect(uploaded.code, uploaded.stderr).toBe(0);
    const upload = json<Upload>(uploaded);
    expect(upload.tokenizer).toMatchObject({
      owner: "tenant",
      status: "ready",
      manifestHash: await manifestHashOf(manifest),
    });
    const paths = manifestFiles(manifest).map((ref) => ref.path);
    expect(upload.sent.every((path) => paths.includes(path))).toBe(true);
    expect(json<Upload>(await run(["tokenizers", "upload", "offline-tok", "--json"])).sent).toEqual(
      [],
    );
    // A folder whose file is not the one its manifest pins is refused before anything is sent.
    cpSync(join(dir, "offline-tok"), join(dir, "offline-damaged"), { recursive: true });
    const codebookPath = join(dir, "offline-damaged", manifest.files.codebook.path);
    const damaged = readFileSync(codebookPath);
    damaged[damaged.length - 1] ^= 1;
    writeFileSync(codebookPath, damaged);
    expectFailure(
      await run(["tokenizers", "upload", "offline-damaged"]),
      2,
      /is not the file the manifest pins/,
    );
    expectFailure(
      await run(["tokenizers", "upload", "nowhere"]),
      2,
      /cannot read .*manifest\.json/,
    );

    // As a public one, the folder registers as npm start registers models/default-tokenizer.
    const register = await registerTokenizer(["--url", edge.url, "offline-tok"], {
      cwd: dir,
      env: { REVQ_ADMIN_KEY: edge.adminKey },
    });
    expect(register.code, register.stderr).toBe(0);
    const { id, manifestHash } = JSON.parse(register.stdout);
    expect(manifestHash).toBe(await manifestHashOf(manifest));
    expect((await run(["tokenizers", "show", id, "--json"])).stdout).toContain('"status": "ready"');

    expectFailure(
      await run(["train", "trainset", "--offline", "--json"]),
      2,
      /--json and --url are for remote training/,
    );
  });
});

describe("revq's failures: exit codes and messages that say what to do", () => {
  it("has no edge or key: 3, pointing at npm start", async () => {
    const r = await revq(["tokenizers"], { cwd: dir });
    expectFailure(r, 3, /^revq: no edge URL: --url or REVQ_URL is not set\n {2}→ run `npm start`/);
  });

  it("a refused key: 3; an edge that is not there: 5", async () => {
    expectFailure(
      await run(["tokenizers"], { REVQ_API_KEY: "rvq_api_wrong" }),
      3,
      /401 .*\n {2}→ check REVQ_API_KEY/,
    );
    expectFailure(
      await run(["jobs", "--url", `http://127.0.0.1:${await freePort()}`]),
      5,
      /cannot reach the edge at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\n {2}→ is the local stack running\? Start it with `npm start`/,
    );
  });

  it("the edge refuses: 4 with its detail; --json gets the error as JSON too", async () => {
    writeFileSync(join(dir, "fake.png"), "not an image at all");
    const r = await run(["tokenize", "fake.png", "--tokenizer", tokenizer.id, "--json"]);
    expectFailure(r, 4, /POST \/v1\/images: 415 /);
    expect(json<{ error: { code: string; exitCode: number } }>(r).error).toMatchObject({
      code: "image.unknown-format",
      exitCode: 4,
    });
    expectFailure(await run(["jobs", "show", "job_nope"]), 4, /404 /);
    expectFailure(await run(["tokenize", "photos", "--tokenizer", "tok_nope"]), 4, /404 /);
  });

  it("bad usage and damaged input files: 2, before anything is sent", async () => {
    expectFailure(
      await run(["tokenise"]),
      2,
      /unknown command "tokenise"\n {2}→ commands: tokenize, /,
    );
    expectFailure(
      await run(["tokenize", "photos", "--format", "png"]),
      2,
      /--format must be one of rvq, json, npy/,
    );
    expectFailure(
      await run(["tokenize", "nothing-here"]),
      2,
      /nothing-here: no such file or folder/,
    );
    const stream = readFileSync(join(dir, "t.rvqt"));
    stream[70] ^= 0xff;
    writeFileSync(join(dir, "damaged.rvqt"), stream);
    expectFailure(
      await run(["decode", "damaged.rvqt"]),
      2,
      /damaged\.rvqt is not a token file: .*crc/i,
    );
    expectFailure(
      await run(["train", "photos", "--out", "x"]),
      2,
      /--out is for --offline training/,
    );
    expectFailure(
      await run(["train", "photos", "--dataset", "dst_x"]),
      2,
      /give folders of images or --dataset, not both/,
    );
  });
});
