import { defaultHeldOut, minimumTrainImages } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { CliError } from "../../cli/src/errors.ts";
import { checkEnoughImages } from "../../cli/src/train-dataset.ts";

function refusal(count: number, parameters: Record<string, unknown>): CliError {
  try {
    checkEnoughImages(count, parameters);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error("did not refuse");
}

describe("revq train's check of the dataset's size", () => {
  it("finds the fewest images that make one batch after the held-out tenth", () => {
    for (const batch of [1, 8, 9, 10, 256, 2300, 65536]) {
      const n = minimumTrainImages(batch);
      expect(n - defaultHeldOut(n)).toBeGreaterThanOrEqual(batch);
      expect(n - 1 - defaultHeldOut(n - 1)).toBeLessThan(batch);
    }
  });

  it("refuses too few images naming --batch-size, and passes enough", () => {
    const e = refusal(22, { batchSize: 32 });
    expect([e.exitCode, e.message, e.hint]).toEqual([
      2,
      "22 images (2 held out for validation) do not make one batch of 32",
      "train on at least 35 images, or pass --batch-size 20 or less",
    ]);
    expect(refusal(283, {}).message).toMatch(/do not make one batch of 256$/);
    expect(() => checkEnoughImages(284, {})).not.toThrow();
    expect(() => checkEnoughImages(22, { batchSize: 8 })).not.toThrow();
  });
});
