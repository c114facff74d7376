import { sleep } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { Batcher } from "../../gpu-worker/src/pipeline/batcher.ts";

/** A device operation that records each batch it is given and doubles every item. */
function device(batches: number[][], ms = 20) {
  return async (items: number[]) => {
    batches.push([...items]);
    await sleep(ms);
    return items.map((x) => 2 * x);
  };
}

describe("Batcher", () => {
  it("fills batches with items of several submitters, in arrival order", async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(4);
    const run = device(batches);
    const a = batcher.submit("encode:t1", run, [1, 2, 3]);
    const b = batcher.submit("encode:t1", run, [10, 11, 12]);
    expect(await a).toEqual([2, 4, 6]);
    expect(await b).toEqual([20, 22, 24]);
    expect(batches).toEqual([
      [1, 2, 3, 10],
      [11, 12],
    ]);
    expect(batcher.stats).toEqual({ batches: 2, items: 6 });
  });

  it("keeps at most two batches outstanding and takes turns between keys", async () => {
    const batches: number[][] = [];
    let running = 0;
    let most = 0;
    const run = async (items: number[]) => {
      running++;
      most = Math.max(most, running);
      batches.push([...items]);
      await sleep(10);
      running--;
      return items;
    };
    const batcher = new Batcher(2);
    await Promise.all([
      batcher.submit("a", run, [1, 2, 3, 4, 5]),
      batcher.submit("b", run, [100, 101]),
    ]);
    expect(most).toBe(2);
    expect(batches).toEqual([[1, 2], [100, 101], [3, 4], [5]]);
  });

  it("starts only a full batch behind another; a partial one gathers items meanwhile", async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(3);
    const run = device(batches, 30);
    const first = batcher.submit("k", run, [1, 2, 3, 4]);
    await sleep(5); // [1, 2, 3] runs; [4] waits, not full
    const second = batcher.submit("k", run, [5, 6]);
    await Promise.all([first, second]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });

  it("fails only the batch whose operation failed", async () => {
    const batcher = new Batcher(2);
    const run = async (items: number[]) => {
      if (items.includes(3)) throw new Error("device lost");
      return items;
    };
    const results = await Promise.allSettled([
      batcher.submit("k", run, [1, 2]),
      batcher.submit("k", run, [3, 4]),
      batcher.submit("k", run, [5, 6]),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("drops a cancelled submitter's items that have not started", async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(1);
    const controller = new AbortController();
    const run = device(batches);
    // Two batches of one start at once (the second behind the first); the rest waits.
    const kept = batcher.submit("k", run, [1, 2]);
    const dropped = batcher.submit("k", run, [3, 4, 5], controller.signal);
    dropped.catch(() => undefined);
    await sleep(5);
    controller.abort(new Error("cancelled"));
    await expect(dropped).rejects.toThrow("cancelled");
    expect(await kept).toEqual([2, 4]);
    await sleep(50);
    expect(batches).toEqual([[1], [2]]);
  });
});
