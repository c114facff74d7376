/**
 * revq tokenize --dataset against the real stack: wrangler dev (LocalEdge) with the tiny
 * tokenizer as its default and two revq-worker processes, which lease the job's shards in
 * parallel. The folder becomes a dataset, its shards, manifest and index land in --out, and
 * they hold what encoding the same images inline gives; a second run reuses every shard.
 */

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type RecordIndex,
  readTokenStream,
  type TokenShardManifest,
  tokenShardName,
} from "@revq/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { LocalEdge } from "../e2e/support/edge.ts";
import { buildTinyTokenizer, syntheticImage } from "../e2e/support/tiny-tokenizer.ts";
import { WorkerProcess } from "../e2e/support/worker-process.ts";
import { registerTokenizer as registerOn, type Tenant } from "../e2e/support/world.ts";
import { json, revq } from "./support/run-cli.ts";

let edge: LocalEdge;
const dir = mkdtempSync(join(tmpdir(), "revq-cli-dataset-"));
let tenant: Tenant;
let workers: WorkerProcess[] = [];
let hash: string;
let env: Record<string, string>;

const run = (args: string[]) => revq(args, { cwd: dir, env });
const IMAGES = 7;

beforeAll(async () => {
  await selectBackend("wasm");
  const built = await buildTinyTokenizer();
  edge = new LocalEdge({ DEFAULT_TOKENIZER: built.hash });
  await edge.start();
  tenant = await edge.tenant("cli-dataset");
  hash = built.hash;
  await registerOn(edge, built);
  workers = ["a", "b"].map(
    (name) =>
      new WorkerProcess(edge, { name: `shard-worker-${name}`, workerKey: tenant.workerKey }),
  );
  await Promise.all(workers.map((w) => w.waitFor((l) => l.msg === "revq-worker started")));
  env = { REVQ_URL: edge.url, REVQ_API_KEY: tenant.apiKey };
  mkdirSync(join(dir, "set"));
  for (let i = 0; i < IMAGES; i++) {
    writeFileSync(join(dir, "set", `${i}.png`), await syntheticImage(700 + i));
  }
}, 300_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await edge?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("revq tokenize --dataset", () => {
  it("uploads a folder as a dataset, encodes it in shards on two workers and writes shards, manifest and index", async () => {
    const made = await run([
      "tokenize",
      "--dataset",
      "set",
      "--shard-size",
      "3",
      "--json",
      "-o",
      "out",
    ]);
    expect(made.code, made.stderr).toBe(0);
    const result = json<{ job: string; dataset: string; records: number; shards: number }>(made);
    expect(result).toMatchObject({ records: IMAGES, shards: 3 });
    expect(readdirSync(join(dir, "out")).sort()).toEqual([
      "manifest.json",
      "records.json",
      tokenShardName(0),
      tokenShardName(1),
      tokenShardName(2),
    ]);
    const manifest = JSON.parse(
      readFileSync(join(dir, "out", "manifest.json"), "utf8"),
    ) as TokenShardManifest;
    expect(manifest).toMatchObject({ job: result.job, tokenizerHash: hash, recordCount: IMAGES });
    const index = JSON.parse(readFileSync(join(dir, "out", "records.json"), "utf8")) as RecordIndex;
    expect(index.records.map((r) => r.shard)).toEqual([0, 0, 0, 1, 1, 1, 2]);
    expect(index.records.every((r) => r.imageId?.startsWith("img_"))).toBe(true);

    // Both workers took shards: the job's shard jobs were leased in parallel.
    type Events = { events: { data: { worker?: string } }[] };
    const job = await edge.api<{ shardJobs: string[] }>(
      "GET",
      `/v1/jobs/${result.job}`,
      tenant.apiKey,
    );
    const names = new Set<string>();
    for (const id of job.shardJobs) {
      const events = await edge.api<Events>("GET", `/v1/jobs/${id}/events`, tenant.apiKey);
      for (const e of events.events) if (e.data.worker) names.add(e.data.worker);
    }
    expect(names.size).toBe(2);

    // The shards hold what one encode of the same images inline makes, record for record.
    const shardIds = manifest.shards.flatMap((s) => [
      ...readTokenStream(new Uint8Array(readFileSync(join(dir, "out", tokenShardName(s.index)))))
        .tokens,
    ]);
    const inline = await run(["tokenize", "set", "-o", "inline.rvqt"]);
    expect(inline.code, inline.stderr).toBe(0);
    const inlineIds = readTokenStream(new Uint8Array(readFileSync(join(dir, "inline.rvqt"))));
    expect(shardIds).toEqual([...inlineIds.tokens]);

    // The whole job as one stream, and a Range across shards 0 and 1.
    const whole = await fetch(`${edge.url}/v1/jobs/${result.job}/tokens`, {
      headers: { authorization: `Bearer ${tenant.apiKey}` },
    });
    const bytes = new Uint8Array(await whole.arrayBuffer());
    expect([...readTokenStream(bytes).tokens]).toEqual(shardIds);
    const stride = Number(whole.headers.get("revq-record-stride"));
    const part = await fetch(`${edge.url}/v1/jobs/${result.job}/tokens`, {
      headers: {
        authorization: `Bearer ${tenant.apiKey}`,
        range: `bytes=${64 + 2 * stride}-${64 + 4 * stride - 1}`,
      },
    });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(
      bytes.subarray(64 + 2 * stride, 64 + 4 * stride),
    );

    // The same dataset, tokenizer and shard size again: nothing to encode, the same shards.
    const again = await run([
      "tokenize",
      "--dataset",
      result.dataset,
      "--shard-size",
      "3",
      "-o",
      "again",
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/0 shards to encode/);
    for (const s of manifest.shards) {
      expect(readFileSync(join(dir, "again", tokenShardName(s.index)))).toEqual(
        readFileSync(join(dir, "out", tokenShardName(s.index))),
      );
    }
  }, 300_000);

  it("refuses bad usage before anything is sent, and an absurd shard size with the edge's detail", async () => {
    const both = await run(["tokenize", "set", "--dataset", "set"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--dataset takes no image files/);
    const absurd = await run(["tokenize", "--dataset", "set", "--shard-size", "100000"]);
    expect(absurd.code).toBe(4);
    expect(absurd.stderr).toMatch(/shardSize/);
    const missing = await run(["tokenize", "--dataset", "dst_01m8d0fxvcpfrrd0dgccvp9czy"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/dst_01m8d0fxvcpfrrd0dgccvp9czy/);
  }, 120_000);
});
