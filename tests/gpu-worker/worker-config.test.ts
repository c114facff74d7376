import { describe, expect, it } from "vitest";
import { ConfigError, helpText, parseConfig } from "../../gpu-worker/src/config.ts";
import { createLogger } from "../../gpu-worker/src/log.ts";

const ENV = {
  REVQ_EDGE_URL: "http://127.0.0.1:8787",
  REVQ_WORKER_KEY: "rvq_wrk_x",
  HOME: "/home/u",
};

describe("parseConfig", () => {
  it("reads variables, lets flags win, and fills defaults", () => {
    const config = parseConfig(["--batch-size", "16"], {
      ...ENV,
      REVQ_BATCH_SIZE: "4",
      REVQ_TASKS: "3",
      XDG_CACHE_HOME: "/var/cache",
      REVQ_MODELS_DIR: "/models",
    });
    expect(config).toMatchObject({
      edgeUrl: "http://127.0.0.1:8787",
      workerKey: "rvq_wrk_x",
      batchSize: 16,
      tasksHeld: 3,
      backend: "auto",
      cacheDir: "/var/cache/revq-worker",
      modelsDir: "/models",
      graceSeconds: 30,
      leaseWaitSeconds: 20,
    });
  });

  it("refuses a bucket credential: the worker needs none", () => {
    expect(() =>
      parseConfig([], { ...ENV, REVQ_S3_ACCESS_KEY_ID: "id", REVQ_S3_SECRET_ACCESS_KEY: "s" }),
    ).toThrow(
      /REVQ_S3_ACCESS_KEY_ID, REVQ_S3_SECRET_ACCESS_KEY: revq-worker holds no bucket credential/,
    );
    expect(() => parseConfig(["--s3-endpoint", "http://x"], ENV)).toThrow(/Unknown option/);
  });

  it("lists every problem with its flag and variable", () => {
    const attempt = () =>
      parseConfig(["--backend", "cuda", "--tasks", "0"], { REVQ_EDGE_URL: "ftp://x" });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/--edge-url \(REVQ_EDGE_URL\): must be an http\(s\) URL/);
    expect(attempt).toThrow(/--worker-key \(REVQ_WORKER_KEY\): is required/);
    expect(attempt).toThrow(/--backend \(REVQ_BACKEND\): must be auto, tensorflow/);
    expect(attempt).toThrow(/--tasks \(REVQ_TASKS\)/);
  });

  it("refuses unknown flags", () => {
    expect(() => parseConfig(["--gpu", "0"], ENV)).toThrow(/Unknown option '--gpu'/);
  });

  it("answers --help with every flag and its variable", () => {
    expect(parseConfig(["--help"], {})).toBe("help");
    const text = helpText();
    for (const flag of ["--edge-url", "--worker-key", "--backend", "--tasks"]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain("env REVQ_WORKER_KEY");
  });
});

describe("createLogger", () => {
  const at = new Date("2026-11-26T12:34:56.789Z");

  it("writes one JSON object per line with the child's fields and errors as objects", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "json", write: (l) => lines.push(l), now: () => at });
    const error = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    log.child({ taskId: "tsk_1" }).warn("edge down", { error, attempt: 2 });
    log.debug("hidden at info");
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        time: "2026-11-26T12:34:56.789Z",
        level: "warn",
        msg: "edge down",
        taskId: "tsk_1",
        error: { name: "Error", message: "refused", code: "ECONNREFUSED" },
        attempt: 2,
      },
    ]);
  });

  it("writes a short line for people", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "pretty", write: (l) => lines.push(l), now: () => at });
    log.info("task leased", { taskId: "tsk_1", stage: "vae encode", n: 3 });
    expect(lines).toEqual(['12:34:56.789 INF task leased taskId=tsk_1 stage="vae encode" n=3']);
  });
});
