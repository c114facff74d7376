import { describe, expect, it } from "vitest";
import { planRangeReads } from "../../edge/src/services/objects/range-plan.ts";

describe("planRangeReads", () => {
  it("reads each row alone when rows are far apart and reads are plentiful", () => {
    expect(planRangeReads([0, 100, 1000], 16, { mergeGap: 0, maxRanges: 10 })).toEqual([
      { offset: 0, length: 16 },
      { offset: 100, length: 16 },
      { offset: 1000, length: 16 },
    ]);
  });

  it("merges adjacent rows and rows within the gap", () => {
    expect(planRangeReads([0, 16, 40, 200], 16, { mergeGap: 8, maxRanges: 10 })).toEqual([
      { offset: 0, length: 56 },
      { offset: 200, length: 16 },
    ]);
  });

  it("merges the smallest gaps first to stay within the number of reads", () => {
    // Gaps: 84, 884, 34, 4984.
    const plan = planRangeReads([0, 100, 1000, 1050, 6050], 16, { mergeGap: 0, maxRanges: 3 });
    expect(plan).toEqual([
      { offset: 0, length: 116 },
      { offset: 1000, length: 66 },
      { offset: 6050, length: 16 },
    ]);
    expect(planRangeReads([0, 100, 1000, 1050, 6050], 16, { mergeGap: 0, maxRanges: 1 })).toEqual([
      { offset: 0, length: 6066 },
    ]);
  });

  it("covers every row exactly once, whatever the budget", () => {
    const offsets = Array.from({ length: 200 }, (_, i) => i * 16 * ((i % 7) + 1));
    const sorted = [...new Set(offsets)].sort((a, b) => a - b);
    for (const maxRanges of [1, 2, 7, 50, 500]) {
      const plan = planRangeReads(sorted, 16, { mergeGap: 0, maxRanges });
      expect(plan.length).toBeLessThanOrEqual(maxRanges);
      for (const offset of sorted) {
        const holders = plan.filter(
          (r) => offset >= r.offset && offset + 16 <= r.offset + r.length,
        );
        expect(holders).toHaveLength(1);
      }
    }
    expect(planRangeReads([], 16, { mergeGap: 0, maxRanges: 1 })).toEqual([]);
  });
});
