/**
 * The README's HTTP tour, run as written: its `sh` block after "over HTTP with `curl`", taken
 * from the README itself and run by bash (curl and jq) against wrangler dev with the shipped default
 * tokenizer and one revq-worker, from a folder laid out as the repository is (.revq/local.env,
 * tests/cli/fixtures/). What it leaves behind must be what its comments say.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readNpy, readTokenStream } from "@revq/shared";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalEdge } from "../e2e/support/edge.ts";
import { WorkerProcess } from "../e2e/support/worker-process.ts";
import { ROOT, registerTokenizer } from "./support/run-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "revq-readme-"));
let edge: LocalEdge;
let worker: WorkerProcess;
let hash: string;

/** The README's shell block that follows the words "over HTTP with `curl`". */
function httpTour(readme: string): string {
  const block = readme.match(/over HTTP with `curl`[\s\S]*?```sh\n([\s\S]*?)```/);
  if (!block) throw new Error("README.md has no sh block after 'over HTTP with `curl`'");
  return block[1];
}

beforeAll(async () => {
  edge = new LocalEdge();
  await edge.start();
  const tenant = await edge.tenant("readme");
  const registered = await registerTokenizer(
    ["--url", edge.url, join(ROOT, "models", "default-tokenizer")],
    { cwd: ROOT, env: { REVQ_ADMIN_KEY: edge.adminKey } },
  );
  expect(registered.code, registered.stderr).toBe(0);
  hash = JSON.parse(registered.stdout).manifestHash;
  worker = new WorkerProcess(edge, { name: "readme-worker", workerKey: tenant.workerKey });
  await worker.waitFor((l) => l.msg === "revq-worker started");
  mkdirSync(join(dir, ".revq"));
  writeFileSync(
    join(dir, ".revq", "local.env"),
    `REVQ_URL=${edge.url}\nREVQ_API_KEY=${tenant.apiKey}\n`,
  );
  symlinkSync(join(ROOT, "tests"), join(dir, "tests"));
});

afterAll(async () => {
  await worker?.stop();
  await edge?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("the README's curl tour", () => {
  it("uploads, encodes, waits, downloads the tokens, decodes and reconstructs, as written", async () => {
    const script = httpTour(readFileSync(join(ROOT, "README.md"), "utf8"));
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        "bash",
        // --norc: bash reads ~/.bashrc when its stdin is a socket, as Node's is. -x: the trace
        // (stderr, shown on failure) names the step that failed, which curl -s does not.
        ["--norc", "-xeo", "pipefail", "-c", script],
        { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 90_000 },
        (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
      );
    });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    // wait_for's line for each job: the encode job, then the reconstruct job.
    expect(run.stdout).toMatch(
      /^\{"id":"job_\w+","status":"succeeded","error":null\}\n\{"id":"job_\w+","status":"succeeded","error":null\}\n$/,
    );
    const stream = readTokenStream(new Uint8Array(readFileSync(join(dir, "chelsea.rvqt"))));
    expect([stream.header.recordCount, stream.header.tokenizerHash]).toEqual([1, hash]);
    const latents = readNpy(new Uint8Array(readFileSync(join(dir, "latents.npy"))));
    expect([latents.dtype, latents.shape.length, latents.shape[0]]).toEqual(["<f4", 4, 1]);
    const png = await sharp(join(dir, "reconstructed.png")).metadata();
    expect([png.format, png.width, png.height]).toEqual(["png", 64, 64]);
  });
});
