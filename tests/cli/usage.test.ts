/**
 * The bin's answers to a newcomer's mistakes, each before anything is sent: the edge here is a
 * loopback server that refuses every key (401), so a run that gets that far says so (exit 3).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Tokenizer, writeNpy } from "@revq/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tokenizerLine } from "../../cli/src/commands/tokenizers.ts";
import { evaluationLines } from "../../cli/src/evaluation.ts";
import { type CliRun, revq } from "./support/run-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "revq-cli-usage-"));
let server: Server;
let env: Record<string, string>;

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(401, { "content-type": "application/problem+json" });
    res.end(JSON.stringify({ status: 401, code: "unauthorized", detail: "no such key" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  env = {
    REVQ_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    REVQ_API_KEY: "rvq_api_test",
  };
});

afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = (args: string[], extraEnv: Record<string, string> = {}) =>
  revq(args, { cwd: dir, env: { ...env, ...extraEnv } });

function expectUsage(r: CliRun, stderr: string): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toBe(stderr);
}

describe("revq's usage errors", () => {
  it("a bare revq prints the usage and exits 2", async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^usage: revq <command> \[options\]/);
    expect((await run(["--help"])).code).toBe(0);
  });

  it("an unknown flag or a missing value is said as the other usage errors are", async () => {
    expectUsage(
      await run(["tokenize", "--fromat", "json"]),
      "revq: unknown option --fromat\n  → see revq tokenize --help\n",
    );
    expectUsage(
      await run(["decode", "-o"]),
      "revq: --out needs a value\n  → see revq decode --help\n",
    );
  });

  it("decode names the file that is not there, and says why a .npy of ids cannot be decoded", async () => {
    expectUsage(await run(["decode", "nope.rvqt"]), "revq: nope.rvqt: no such file\n");
    writeFileSync(join(dir, "ids.npy"), writeNpy(new Int32Array(4), [1, 4]));
    const npy = await run(["decode", "ids.npy"]);
    expect(npy.code).toBe(2);
    expect(npy.stderr).toMatch(
      /ids\.npy is a \.npy of token ids, which does not name its tokenizer/,
    );
    expect(npy.stderr).toMatch(
      /→ decode the encode job's tokens instead: revq decode --job JOB_ID/,
    );
  });

  it("a webhook endpoint that is no URL is usage (2), not the edge's refusal (4)", async () => {
    const r = await run(["webhooks", "add", "not-a-url"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^revq: "not-a-url" is not an http\(s\) URL\n/);
  });

  it("a REVQ_URL that ends in /v1 is named as the mistake it is", async () => {
    const r = await run(["jobs"], { REVQ_URL: `${env.REVQ_URL}/v1` });
    expectUsage(
      r,
      `revq: REVQ_URL should be the edge's base URL, without /v1: "${env.REVQ_URL}/v1"\n  → use ${env.REVQ_URL}\n`,
    );
  });

  it("says what a folder held before it uploads anything", async () => {
    mkdirSync(join(dir, "photos", "more"), { recursive: true });
    for (const name of ["a.png", "b.jpg", "more/c.webp", "notes.txt"]) {
      writeFileSync(join(dir, "photos", name), "x");
    }
    const r = await run(["tokenize", "photos"]);
    // Then the edge refuses the key: nothing was uploaded before the count was told.
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^photos: 3 images in 2 folders\nrevq: GET \/v1\/tenant: 401 /);
  });
});

describe("revq's lines", () => {
  it("counts a tokenizer's codebooks in the singular too", () => {
    const tokenizer: Tokenizer = {
      id: "tok_1",
      name: "default",
      manifestHash: "ab",
      owner: "public",
      status: "ready",
      quantizer: { tokens: 512, groups: 1, codeDim: 4, codesPerGroup: 4096 },
      files: [],
      createdAt: "2026-01-01T00:00:00Z",
      readyAt: "2026-01-01T00:00:00Z",
    };
    expect(tokenizerLine(tokenizer)).toBe(
      "tok_1  default  512 tokens × 4096 codes (1 group)  public",
    );
    const two = { ...tokenizer, quantizer: { ...tokenizer.quantizer, groups: 2 } };
    expect(tokenizerLine(two)).toContain("(2 groups)");
  });

  it("shows a tokenizer's evaluation as a short block", () => {
    const evaluation = {
      heldOut: { latents: 256, images: 8 },
      latentMse: { quantized: 0.35, rectified: 1.17 },
      images: {
        tokens: { psnr: 23.4567, ssim: 0.7123 },
        vae: { psnr: 24.0567, ssim: 0.8 },
        tokensVsVae: { ssim: 1 },
      },
      usage: { min: 0.25, mean: 0.5 },
      bitsPerImage: 6144,
    };
    expect(evaluationLines(evaluation)).toEqual([
      "  evaluation     on 256 held-out latents, 8 images decoded",
      "    PSNR         23.46 dB from tokens, 24.06 dB VAE alone (0.60 dB below it); ∞ dB against the VAE's",
      "    SSIM         0.712 from tokens, 0.800 VAE alone; 1.000 against the VAE's",
      "    latent MSE   0.3500 quantized → 1.1700 rectified (the rectifier does not help)",
      "    usage        min 0.250, mean 0.500 of each group's codes",
      "    bits/image   6144",
    ]);
    const { images: _images, ...latentsOnly } = evaluation;
    expect(evaluationLines({ ...latentsOnly, heldOut: { latents: 3, images: 0 } })).toHaveLength(4);
  });
});
