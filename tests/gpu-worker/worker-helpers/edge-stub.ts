/**
 * A small stand-in for the edge's worker API on a real loopback HTTP server: a queue of tasks,
 * leases with long-poll, and a record of every heartbeat, complete, fail and release. Tests steer it
 * (answer 503 for a while, say the job was cancelled, go away and come back) to see what the
 * worker does. The real edge is exercised end to end in tests/e2e.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { LeasedTask, TaskPayload } from "@revq/shared";

export type Call = { path: string; body: Record<string, unknown>; at: number };

type Override = (path: string, body: Record<string, unknown>) => [number, unknown] | undefined;

export class EdgeStub {
  readonly calls: Call[] = [];
  /** Tasks waiting to be leased. */
  readonly queue: LeasedTask[] = [];
  leaseSeconds = 3;
  /** Task ids whose next heartbeat answers cancelled. */
  readonly cancelled = new Set<string>();
  /** Task ids whose calls answer 409 lease-lost. */
  readonly lost = new Set<string>();
  /** Answers a request before the normal handling, when it returns something. */
  override: Override | undefined;
  private server: Server | undefined;
  private port = 0;
  private waiters: (() => void)[] = [];

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Goes away (connections refused) until start() is called again, on the same port. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const wake of this.waiters.splice(0)) wake();
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  restart(): Promise<void> {
    return this.start(this.port);
  }

  add(task: LeasedTask): void {
    this.queue.push(task);
    for (const wake of this.waiters.splice(0)) wake();
  }

  callsTo(suffix: string): Call[] {
    return this.calls.filter((c) => c.path.endsWith(suffix));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
    const path = req.url ?? "";
    this.calls.push({ path, body, at: Date.now() });
    if (req.headers.authorization !== "Bearer rvq_wrk_test") {
      return send(res, 401, { code: "invalid-key", detail: "Unknown key." });
    }
    const forced = this.override?.(path, body);
    if (forced) return send(res, forced[0], forced[1]);
    if (path === "/v1/worker/lease") return this.lease(body, res);
    const match = path.match(/^\/v1\/worker\/tasks\/([^/]+)\/(heartbeat|complete|fail|release)$/);
    if (!match) return send(res, 404, { code: "route-not-found", detail: path });
    const [, taskId, action] = match;
    if (this.lost.has(taskId)) {
      return send(res, 409, { code: "lease-lost", detail: `This lease on ${taskId} is gone.` });
    }
    if (action === "heartbeat") {
      const cancelled = this.cancelled.has(taskId);
      const expires = new Date(Date.now() + this.leaseSeconds * 1000).toISOString();
      return send(res, 200, { cancelled, leaseExpiresAt: cancelled ? null : expires });
    }
    if (action === "complete") return send(res, 200, { taskId, jobId: "job", status: "succeeded" });
    if (action === "release") return send(res, 200, { taskId, jobId: "job", status: "queued" });
    return send(res, 200, {
      taskId,
      jobId: "job",
      status: body.retryable ? "queued" : "failed",
      attempt: 1,
      retryAt: null,
    });
  }

  private async lease(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    const deadline = Date.now() + Number(body.waitSeconds ?? 0) * 1000;
    while (this.queue.length === 0 && Date.now() < deadline && this.server) {
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, deadline - Date.now());
      });
    }
    const max = Number(body.max ?? 1);
    const tasks = this.queue.splice(0, max).map((t) => ({
      ...t,
      leaseExpiresAt: new Date(Date.now() + this.leaseSeconds * 1000).toISOString(),
    }));
    send(res, 200, { tasks, leaseSeconds: this.leaseSeconds });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  const type = status >= 400 ? "application/problem+json" : "application/json";
  res.writeHead(status, { "content-type": type });
  res.end(JSON.stringify(body));
}

let counter = 0;

/** A leased encode task with a valid payload (the stub never looks inside it). */
export function encodeTask(overrides: Partial<LeasedTask> = {}): LeasedTask {
  counter++;
  const hash = "a".repeat(64);
  const payload: TaskPayload = {
    kind: "encode",
    tokenizer: {
      id: "tok_test",
      manifestHash: hash,
      manifestKey: `tokenizers/${hash}/manifest.json`,
      filesPrefix: `tokenizers/${hash}/files/`,
    },
    images: [{ imageId: "img_1", bucketKey: "k", format: "png", width: 8, height: 8 }],
    output: { tokens: "out.rvqt" },
  };
  return {
    taskId: `tsk_${counter}`,
    jobId: `job_${counter}`,
    kind: "encode",
    attempt: 1,
    maxAttempts: 5,
    leaseId: `lse_${counter}`,
    leaseExpiresAt: new Date().toISOString(),
    objects: [],
    payload,
    ...overrides,
  };
}
