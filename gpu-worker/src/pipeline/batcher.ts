/**
 * The device's queue. Tasks submit single items (one image to encode, one latent to decode) under
 * a key that names the operation and the model (`encode:<tokenizer hash>`); the batcher runs one
 * operation at a time on the device, each on up to `batchSize` items of one key taken in arrival
 * order, whichever tasks they came from. So several small tasks held at once fill batches
 * together, and the device never runs two batches concurrently (they would only compete for it).
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

export class Batcher {
  private readonly batchSize: number;
  private readonly lanes = new Map<string, Lane>();
  private running = false;
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
    void this.pump();
    return Promise.all(outputs) as Promise<O[]>;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // Let the other tasks' submissions of this turn of the event loop join the first batch.
      await new Promise((resolve) => setImmediate(resolve));
      for (let next = this.nextBatch(); next; next = this.nextBatch()) {
        const [lane, items] = next;
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
    } finally {
      this.running = false;
    }
  }

  /** The next batch of the key waiting longest, dropping aborted items; undefined when nothing waits. */
  private nextBatch(): [Lane, Item[]] | undefined {
    for (const [key, lane] of this.lanes) {
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
