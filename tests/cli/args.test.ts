import { describe, expect, it } from "vitest";
import { parseCommand } from "../../cli/src/args.ts";
import { trainParameters } from "../../cli/src/commands/train.ts";
import { CliError } from "../../cli/src/errors.ts";
import { renderBar } from "../../cli/src/progress.ts";

const TRAIN_OPTIONS = {
  params: { type: "string" },
  epochs: { type: "string" },
  "batch-size": { type: "string" },
  seed: { type: "string" },
  name: { type: "string" },
  preset: { type: "string" },
} as const;

function usage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    return (error as CliError).message;
  }
  throw new Error("did not fail");
}

describe("command lines", () => {
  it("refuses unknown flags with the command's help named", () => {
    try {
      parseCommand("tokenize", ["--fromat", "json"], {});
      throw new Error("did not fail");
    } catch (error) {
      expect((error as CliError).exitCode).toBe(2);
      expect((error as CliError).message).toBe("unknown option --fromat");
      expect((error as CliError).hint).toBe("see revq tokenize --help");
    }
    const options = { out: { type: "string", short: "o" } } as const;
    expect(usage(() => parseCommand("tokenize", ["-x"], options))).toBe("unknown option -x");
    expect(usage(() => parseCommand("tokenize", ["-o"], options))).toBe("--out needs a value");
    expect(usage(() => parseCommand("tokenize", ["--json=1"], options))).toBe(
      "--json takes no value",
    );
  });

  it("turns training flags into job parameters, over --params", () => {
    const parsed = parseCommand(
      "train",
      [
        "--params",
        '{"epochs": 50, "rectifier": {"channels": 16}}',
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--seed",
        "0",
        "--name",
        "mine",
      ],
      TRAIN_OPTIONS,
    );
    expect(trainParameters(parsed)).toEqual({
      epochs: 3,
      batchSize: 8,
      seed: 0,
      name: "mine",
      rectifier: { channels: 16 },
    });
    const parse = (args: string[]) => () =>
      trainParameters(parseCommand("train", args, TRAIN_OPTIONS));
    expect(usage(parse(["--params", "{epochs"]))).toMatch(/^--params is not JSON/);
    expect(usage(parse(["--params", "[1]"]))).toBe("--params must be a JSON object");
    expect(usage(parse(["--epochs", "0"]))).toBe('--epochs must be a whole number ≥ 1, not "0"');
    expect(usage(parse(["--seed=1.5"]))).toBe("--seed must be a whole number ≥ 0");
  });

  it("draws progress as a bar with counts, or a count when the total is unknown", () => {
    expect(renderBar("encode", 7, 28, "batch 1")).toBe(
      `encode ${"█".repeat(7)}${"░".repeat(21)} 7/28 25% batch 1`,
    );
    expect(renderBar("train", 3)).toBe("train 3");
    expect(renderBar("x", 5, 4)).toContain("100%");
  });
});
