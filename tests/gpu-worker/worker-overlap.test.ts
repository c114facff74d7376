import { sleep } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { overlapped } from "../../gpu-worker/src/pipeline/overlap.ts";

describe("overlapped", () => {
  it("consumes every chunk in order while the next ones load and compute", async () => {
    const events: string[] = [];
    const consumed: number[] = [];
    await overlapped({
      chunks: 5,
      // Later chunks load faster: the order of consumption must not follow completion.
      load: async (n) => {
        events.push(`load ${n}`);
        await sleep(20 - 4 * n);
        return n * 10;
      },
      compute: async (loaded, n) => {
        events.push(`compute ${n}`);
        await sleep(5);
        return loaded + 1;
      },
      consume: async (computed, n) => {
        events.push(`consume ${n}`);
        consumed.push(computed);
        await sleep(10);
      },
    });
    expect(consumed).toEqual([1, 11, 21, 31, 41]);
    // Three chunks start at once (this one and two ahead); a fourth only once the first is done.
    expect(events.slice(0, 3)).toEqual(["load 0", "load 1", "load 2"]);
    expect(events.indexOf("load 3")).toBeGreaterThan(events.indexOf("compute 0"));
    // While chunk 0 is consumed, chunk 1 has computed already: the device did not wait for it.
    expect(events.indexOf("compute 1")).toBeLessThan(events.indexOf("consume 0"));
  });

  it("never has more than `ahead` chunks beyond the one consumed", async () => {
    let inFlight = 0;
    let most = 0;
    await overlapped({
      chunks: 12,
      ahead: 3,
      load: async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await sleep(1);
      },
      compute: async () => undefined,
      consume: async () => {
        inFlight--;
        await sleep(3);
      },
    });
    expect(most).toBe(4);
  });

  it("ends on the first failure without waiting for the rest, and leaves no rejection unhandled", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const consumed: number[] = [];
    try {
      await expect(
        overlapped({
          chunks: 6,
          load: async (n) => {
            await sleep(2);
            if (n >= 1) throw new Error(`chunk ${n} is unreadable`);
            return n;
          },
          compute: async (loaded) => loaded,
          consume: (n) => {
            consumed.push(n);
          },
        }),
      ).rejects.toThrow("chunk 1 is unreadable");
      await sleep(20);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    expect(consumed).toEqual([0]);
    expect(unhandled).toEqual([]);
  });

  it("stops when its signal is aborted", async () => {
    const controller = new AbortController();
    const consumed: number[] = [];
    const run = overlapped({
      chunks: 100,
      signal: controller.signal,
      load: async (n) => n,
      compute: async (n) => n,
      consume: async (n) => {
        consumed.push(n);
        if (n === 2) controller.abort(new Error("cancelled"));
      },
    });
    await expect(run).rejects.toThrow("cancelled");
    expect(consumed).toEqual([0, 1, 2]);
  });
});
