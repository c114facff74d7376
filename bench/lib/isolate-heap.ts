/**
 * The memory of a Worker's isolate under `wrangler dev`, as V8 counts it: the JS heap V8 has
 * committed plus the backing stores of ArrayBuffers (`Runtime.getHeapUsage`), which is what a
 * Worker's 128 MB limit covers. Read through wrangler's DevTools inspector proxy, which shares
 * the isolate's one inspector session with wrangler itself (a second direct session would take
 * it over).
 */

type HeapUsage = { totalSize: number; backingStorageSize?: number };

export class IsolateHeap {
  private readonly ws: WebSocket;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.onmessage = (message) => {
      const { id, result } = JSON.parse(String(message.data)) as { id?: number; result?: unknown };
      if (id === undefined) return;
      this.pending.get(id)?.(result);
      this.pending.delete(id);
    };
  }

  /** Attaches to the Worker through wrangler's inspector on `port`. */
  static async attach(port: number): Promise<IsolateHeap> {
    // The proxy accepts only its own origin. Node's WebSocket (undici) takes headers; the DOM
    // typing of the constructor does not know them.
    const init = { headers: { origin: `http://127.0.0.1:${port}` } } as unknown as string[];
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, init);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`the inspector on port ${port} refused the connection`));
    });
    const heap = new IsolateHeap(ws);
    // The isolate answers a session's calls only once its Runtime domain is enabled.
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
