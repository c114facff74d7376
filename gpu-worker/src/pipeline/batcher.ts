/**
 * The device's queue. Tasks submit single items (one image to encode, one latent to decode) under
 * a key that names the operation and the model (`encode:<tokenizer hash>`); the batcher runs
 * operations on up to `batchSize` items of one key taken in arrival order, whichever tasks they
 * came from. So several small tasks held at once fill batches together.
 *
 * At most two batches are outstanding: while one is read back, the next is already recorded
 * behind it on the device's queue (a GPU runs them one after the other), so the device does not
 * idle between batches for the read-back and the next recording. Only a full batch starts behind
 * another; a partial one waits for the device, gathering items meanwhile. A synchronous backend
 * (wasm, cpu) computes a batch before its run returns, so two never compete for it.
 */

type Item = {
  input: unknown;
  resolve: (output: unknown) => void;
  reject: (error: unknown) => void;
  signal?: AbortSignal;
};

type Lane = {
  run: (inputs: unknown[]) => Promise<unknown[]>;
  items: Item[];
};

export type BatchStats = { batches: number; items: number };

/** Batches outstanding at once: one being read back, one on the device's queue. */
const OUTSTANDING = 2;

export class Batcher {
  private readonly batchSize: number;
  private readonly lanes = new Map<string, Lane>();
  private outstanding = 0;
  private waking = false;
  private readonly counts: BatchStats = { batches: 0, items: 0 };

  constructor(batchSize: number) {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
    }
    this.batchSize = batchSize;
  }

  get stats(): BatchStats {
    return { ...this.counts };
  }

  /** Items waiting for the device. */
  get queued(): number {
    let count = 0;
    for (const lane of this.lanes.values()) count += lane.items.length;
    return count;
  }

  /**
   * Runs `inputs` through `run` (in batches shared with other submitters of the same key; the
   * first submitter's `run` serves the key while it has items queued). Outputs are in input
   * order. An aborted signal drops this submitter's items that have not started.
   */
  submit<I, O>(
    key: string,
    run: (inputs: I[]) => Promise<O[]>,
    inputs: I[],
    signal?: AbortSignal,
  ): Promise<O[]> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { run: run as Lane["run"], items: [] };
      this.lanes.set(key, lane);
    }
    const target = lane;
    const outputs = inputs.map(
      (input) =>
        new Promise<unknown>((resolve, reject) =>
          target.items.push({ input, resolve, reject, signal }),
        ),
    );
    this.wake();
    return Promise.all(outputs) as Promise<O[]>;
  }

  /** Starts batches once the other tasks' submissions of this turn of the event loop joined. */
  private wake(): void {
    if (this.waking || this.outstanding >= OUTSTANDING) return;
    this.waking = true;
    setImmediate(() => {
      this.waking = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.outstanding < OUTSTANDING) {
      const next = this.nextBatch(this.outstanding > 0);
      if (!next) return;
      this.outstanding++;
      void this.runBatch(...next).finally(() => {
        this.outstanding--;
        this.pump();
      });
    }
  }

  private async runBatch(lane: Lane, items: Item[]): Promise<void> {
    try {
      const outputs = await lane.run(items.map((item) => item.input));
      if (outputs.length !== items.length) {
        throw new Error(`a batch of ${items.length} gave ${outputs.length} outputs`);
      }
      this.counts.batches++;
      this.counts.items += items.length;
      for (const [i, item] of items.entries()) item.resolve(outputs[i]);
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  }

  /**
   * The next batch of the key waiting longest, dropping aborted items; undefined when nothing
   * waits (or, with `fullOnly`, when no key has a full batch waiting).
   */
  private nextBatch(fullOnly: boolean): [Lane, Item[]] | undefined {
    for (const [key, lane] of this.lanes) {
      if (fullOnly && lane.items.length < this.batchSize) continue;
      const batch: Item[] = [];
      while (lane.items.length > 0 && batch.length < this.batchSize) {
        const item = lane.items.shift() as Item;
        if (item.signal?.aborted) item.reject(item.signal.reason);
        else batch.push(item);
      }
      // Served keys go to the back, so that a long task cannot starve another model's.
      this.lanes.delete(key);
      if (lane.items.length > 0) this.lanes.set(key, lane);
      if (batch.length > 0) return [lane, batch];
    }
    return undefined;
  }
}
