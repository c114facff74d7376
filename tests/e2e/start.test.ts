/**
 * `npm start` as a user runs it: the real npm script in its own process group (as a terminal's
 * foreground job), a state directory and port of its own, the tiny test tokenizer named by
 * REVQ_TOKENIZER_DIR (no default tokenizer is shipped yet; this is the same code path that
 * registers models/default-tokenizer/). A second start while one runs says so; Ctrl-C (SIGINT to
 * the process group) leaves nothing running; a restart keeps the data and the keys.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { writeTinyTokenizerFolder } from "../cli/support/tokenizer-folder.ts";
import { freePort, OFFLINE_ENV, ROOT } from "./support/edge.ts";
import type { BuiltTokenizer } from "./support/tiny-tokenizer.ts";

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
  let port = 0;
  let built: BuiltTokenizer;
  let env: Record<string, string>;
  const started: NpmStart[] = [];

  const start = () => {
    const s = new NpmStart(env);
    started.push(s);
    return s;
  };

  beforeAll(async () => {
    await selectBackend("wasm");
    built = await writeTinyTokenizerFolder(tokenizerDir);
    port = await freePort();
    env = {
      REVQ_STATE_DIR: stateDir,
      REVQ_PORT: String(port),
      REVQ_TOKENIZER_DIR: tokenizerDir,
    };
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

  it("runs the stack, refuses a second start, stops it all on Ctrl-C, keeps data and keys", async () => {
    const first = start();
    await first.ready();
    expect(first.output).toContain(`revq is running at http://127.0.0.1:${port}`);
    expect(first.output).toContain("Created the local tenant and its keys.");
    expect(first.output).toContain(`tokenizer    ${built.manifest.name}`);
    const local = readFileSync(join(stateDir, "local.env"), "utf8");
    expect(local).toMatch(new RegExp(`^REVQ_URL=http://127.0.0.1:${port}$`, "m"));
    const apiKey = (local.match(/^REVQ_API_KEY=(rvq_api_\S+)$/m) as RegExpMatchArray)[1];
    expect(first.output).toContain(apiKey);

    // The stack answers with that key, and has the tokenizer.
    const headers = { authorization: `Bearer ${apiKey}` };
    const answer = await fetch(`http://127.0.0.1:${port}/v1/tokenizers`, { headers });
    const { tokenizers } = (await answer.json()) as { tokenizers: { manifestHash: string }[] };
    expect(tokenizers.map((t) => t.manifestHash)).toEqual([built.hash]);

    // A second start on the same state while this one runs: refused with the reason.
    const second = start();
    expect(await second.exited()).toBe(3);
    expect(second.output).toContain(`revq is already running from ${stateDir}`);

    await stopAndCheck(first);

    // Restart: the database kept the tenant, so the same keys work; the tokenizer is there.
    const restarted = start();
    await restarted.ready();
    expect(restarted.output).toContain("Reusing the local tenant and its keys.");
    expect(readFileSync(join(stateDir, "local.env"), "utf8")).toBe(local);
    const again = await fetch(`http://127.0.0.1:${port}/v1/tokenizers`, { headers });
    expect(((await again.json()) as { tokenizers: unknown[] }).tokenizers).toHaveLength(1);
    await stopAndCheck(restarted);
  }, 600_000);
});
