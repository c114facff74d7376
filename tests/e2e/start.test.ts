/**
 * `npm start` as a user runs it: the real npm script in its own process group (as a terminal's
 * foreground job), a state directory and port of its own, the shipped default tokenizer
 * (models/default-tokenizer/), and on restart also the tiny test tokenizer's folder named by
 * REVQ_TOKENIZER_DIR. The revq CLI, from a folder below the state directory
 * (so it finds the .revq/local.env npm start wrote), tokenizes a photo, decodes and reconstructs
 * it. A second
 * start while one runs says so; Ctrl-C (SIGINT to the process group) leaves nothing running; a
 * restart keeps the data and the keys.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createCodebook,
  lookupCodes,
  manifestHash,
  parseSafetensors,
  readNpy,
  readTensor,
  readTokenStream,
  type TokenizerManifest,
} from "@revq/shared";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { DEFAULT_TOKENIZER_DIR } from "../../scripts/start/options.ts";
import { readManifest } from "../../scripts/start/tokenizer-folder.ts";
import { json, revq } from "../cli/support/run-cli.ts";
import { writeTinyTokenizerFolder } from "../cli/support/tokenizer-folder.ts";
import { freePort, OFFLINE_ENV, ROOT } from "./support/edge.ts";
import type { BuiltTokenizer } from "./support/tiny-tokenizer.ts";

const PHOTO = join(ROOT, "tests/cli/fixtures/chelsea.jpg");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One `npm start`, its output collected. */
class NpmStart {
  readonly child: ChildProcess;
  output = "";

  constructor(env: Record<string, string>) {
    this.child = spawn("npm", ["start"], {
      cwd: ROOT,
      detached: true,
      env: {
        ...OFFLINE_ENV,
        PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}`,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    this.child.stdout?.on("data", collect);
    this.child.stderr?.on("data", collect);
  }

  get pgid(): number {
    return this.child.pid as number;
  }

  async ready(): Promise<void> {
    await until(
      "npm start printed its banner",
      () => {
        if (this.child.exitCode !== null) throw new Error(`npm start exited:\n${this.output}`);
        return this.output.includes("revq is running at");
      },
      180_000,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}\n${this.output}`);
    });
  }

  exited(): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) resolve(this.child.exitCode);
      else this.child.once("exit", (code) => resolve(code));
    });
  }

  /** Ctrl-C in the terminal: SIGINT to the whole foreground process group. */
  interrupt(): void {
    process.kill(-this.pgid, "SIGINT");
  }

  kill(): void {
    try {
      process.kill(-this.pgid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

describe("npm start", () => {
  const home = mkdtempSync(join(tmpdir(), "revq-e2e-start-"));
  // The user's project folder: npm start's state is its .revq/, which the CLI finds from here.
  const stateDir = join(home, ".revq");
  const tokenizerDir = join(home, "tokenizer");
  const work = join(home, "work");
  let port = 0;
  let built: BuiltTokenizer;
  let shipped: TokenizerManifest;
  let shippedHash: string;
  let env: Record<string, string>;
  const started: NpmStart[] = [];

  const start = (extra: Record<string, string> = {}) => {
    const s = new NpmStart({ ...env, ...extra });
    started.push(s);
    return s;
  };

  beforeAll(async () => {
    mkdirSync(work);
    await selectBackend("wasm");
    built = await writeTinyTokenizerFolder(tokenizerDir);
    port = await freePort();
    // No REVQ_TOKENIZER_DIR: the shipped models/default-tokenizer, as for a user.
    env = { REVQ_STATE_DIR: stateDir, REVQ_PORT: String(port) };
    shipped = readManifest(DEFAULT_TOKENIZER_DIR);
    shippedHash = await manifestHash(shipped);
  });

  afterAll(() => {
    // Only if a test failed half-way: every group it may have left.
    for (const s of started) s.kill();
    const lock = join(stateDir, "start.lock");
    if (existsSync(lock)) {
      const groups = JSON.parse(readFileSync(lock, "utf8")).groups as Record<string, number>;
      for (const pgid of Object.values(groups)) {
        try {
          process.kill(-pgid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    rmSync(home, { recursive: true, force: true });
  });

  /** Ctrl-C, then: every process group it started is gone, the lock too, the port is free. */
  async function stopAndCheck(s: NpmStart): Promise<void> {
    const lock = JSON.parse(readFileSync(join(stateDir, "start.lock"), "utf8"));
    const groups = [s.pgid, ...Object.values(lock.groups as Record<string, number>)];
    expect(groups).toHaveLength(3);
    s.interrupt();
    await until(
      "every process npm start started has exited",
      () => !groups.some((g) => alive(-g)),
      60_000,
    );
    expect(s.output).toContain("Ctrl-C: stopping the worker and the edge");
    expect(existsSync(join(stateDir, "start.lock"))).toBe(false);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  }

  it("runs the stack: the CLI tokenizes, decodes, reconstructs; Ctrl-C stops all; data stays", async () => {
    const first = start();
    await first.ready();
    expect(first.output).toContain(`revq is running at http://127.0.0.1:${port}`);
    expect(first.output).toContain("Created the local tenant and its keys.");
    expect(first.output).toContain(`tokenizer    ${shipped.name} (tok_`);
    // The console, built by wrangler dev before it started (wrangler.toml [build]), at /.
    expect(first.output).toContain(`console      http://127.0.0.1:${port}/ `);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain("<title>revq console</title>");
    const local = readFileSync(join(stateDir, "local.env"), "utf8");
    expect(local).toMatch(new RegExp(`^REVQ_URL=http://127.0.0.1:${port}$`, "m"));
    const apiKey = (local.match(/^REVQ_API_KEY=(rvq_api_\S+)$/m) as RegExpMatchArray)[1];
    expect(first.output).toContain(apiKey);

    // The CLI with nothing but the folder: it reads ../.revq/local.env (from `work`, below home).
    const tokenized = await revq(["tokenize", PHOTO, "-o", "chelsea.rvqt", "--json"], {
      cwd: work,
    });
    expect(tokenized.code, tokenized.stderr).toBe(0);
    const result = json<{ job: string; images: { file: string }[] }>(tokenized);
    expect(result.images.map((i) => i.file)).toEqual([PHOTO]);
    const stream = readTokenStream(new Uint8Array(readFileSync(join(work, "chelsea.rvqt"))));
    expect(stream.header.tokenizerHash).toBe(shippedHash);
    expect(stream.header.recordCount).toBe(1);

    // Decoding is the codebook lookup of those ids, exactly.
    const decoded = await revq(["decode", "chelsea.rvqt", "-o", "latents.npy"], { cwd: work });
    expect(decoded.code, decoded.stderr).toBe(0);
    const latents = readNpy(new Uint8Array(readFileSync(join(work, "latents.npy"))));
    const { channels, height, width } = shipped.vae.latentShape;
    expect(latents.shape).toEqual([1, channels, height, width]);
    const file = parseSafetensors(
      new Uint8Array(readFileSync(join(DEFAULT_TOKENIZER_DIR, shipped.files.codebook.path))),
    );
    const tensor = readTensor(file, "codebook");
    const [groups, codes, dim] = tensor.shape;
    const codebook = createCodebook(groups, codes, dim, tensor.data as Float32Array);
    expect([...(latents.data as Float32Array)]).toEqual([
      ...lookupCodes(codebook, stream.tokens, shipped.quantizer.tokens),
    ]);

    // Pixels again, through the worker: one PNG at the tokenizer's resolution.
    const rebuilt = await revq(["reconstruct", result.job, "-o", "recon", "--json"], { cwd: work });
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const { files } = json<{ files: string[] }>(rebuilt);
    expect(files).toEqual([join("recon", "0000.png")]);
    const meta = await sharp(join(work, files[0])).metadata();
    const { width: w, height: h } = shipped.vae.inputResolution;
    expect([meta.format, meta.width, meta.height]).toEqual(["png", w, h]);

    // A second start on the same state while this one runs: refused with the reason.
    const second = start();
    expect(await second.exited()).toBe(3);
    expect(second.output).toContain(`revq is already running from ${stateDir}`);

    await stopAndCheck(first);

    // Restart: the database kept the tenant, so the same keys work, and the job is there. This
    // time with another tokenizer folder (REVQ_TOKENIZER_DIR): registered beside the first.
    const restarted = start({ REVQ_TOKENIZER_DIR: tokenizerDir });
    await restarted.ready();
    expect(restarted.output).toContain("Reusing the local tenant and its keys.");
    expect(readFileSync(join(stateDir, "local.env"), "utf8")).toBe(local);
    const shown = await revq(["jobs", "show", result.job, "--json"], { cwd: work });
    expect(shown.code, shown.stderr).toBe(0);
    expect(json(shown)).toMatchObject({ id: result.job, status: "succeeded" });
    const listed = json<{ tokenizers: { manifestHash: string }[] }>(
      await revq(["tokenizers", "--json"], { cwd: work }),
    );
    expect(listed.tokenizers.map((t) => t.manifestHash).sort()).toEqual(
      [shippedHash, built.hash].sort(),
    );
    await stopAndCheck(restarted);
  }, 600_000);
});
