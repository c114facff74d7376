/**
 * The memory of a Worker's isolate under `wrangler dev`, as V8 counts it, read through workerd's
 * own inspector with `Runtime.getHeapUsage`: the JS heap V8 has committed plus the backing
 * stores of ArrayBuffers, which is what a Worker's 128 MB limit covers. (The process's resident
 * set also holds local D1 and R2, which run in the same workerd.) workerd opens its inspector on
 * a random port; it is found among the process's listening sockets.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

type HeapUsage = {
  usedSize: number;
  totalSize: number;
  embedderHeapUsedSize?: number;
  backingStorageSize?: number;
};

/** The TCP ports process `pid` listens on (Linux /proc). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (match) inodes.add(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  return readFileSync(`/proc/${pid}/net/tcp`, "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[3] === "0A" && inodes.has(f[9])) // 0A: LISTEN
    .map((f) => Number.parseInt(f[1].split(":")[1], 16));
}

async function debuggerUrl(pid: number, worker: string): Promise<string> {
  for (const port of listeningPorts(pid)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`, {
        signal: AbortSignal.timeout(1000),
      });
      const targets = (await res.json()) as { id: string; webSocketDebuggerUrl: string }[];
      const target = targets.find((t) => t.id === `core:user:${worker}`);
      if (target) return target.webSocketDebuggerUrl;
    } catch {
      // another of workerd's sockets
    }
  }
  throw new Error(`no inspector for Worker ${worker} in process ${pid}`);
}

export class IsolateHeap {
  private readonly ws: WebSocket;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.onmessage = (message) => {
      const { id, result } = JSON.parse(String(message.data)) as { id?: number; result?: unknown };
      if (id !== undefined) this.pending.get(id)?.(result);
      if (id !== undefined) this.pending.delete(id);
    };
  }

  /** Attaches to the Worker named `worker` running in workerd process `pid`. */
  static async attach(pid: number, worker: string): Promise<IsolateHeap> {
    const ws = new WebSocket(await debuggerUrl(pid, worker));
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("the inspector refused the connection"));
    });
    const heap = new IsolateHeap(ws);
    // workerd answers a session's calls only once its Runtime domain is enabled.
    await heap.send("Runtime.enable");
    return heap;
  }

  private send<T>(method: string): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      this.pending.set(id, resolve as (result: unknown) => void);
      this.ws.send(JSON.stringify({ id, method }));
    });
  }

  /** Committed JS heap plus ArrayBuffer backing stores, in bytes. */
  async bytes(): Promise<number> {
    const usage = await this.send<HeapUsage>("Runtime.getHeapUsage");
    return usage.totalSize + (usage.backingStorageSize ?? 0);
  }

  /** Samples every few milliseconds until stop() is called; stop() gives the largest sample. */
  watch(everyMs = 5): { stop(): Promise<number> } {
    let peak = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        peak = Math.max(peak, await this.bytes());
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return peak;
      },
    };
  }

  close(): void {
    this.ws.close();
  }
}
