/**
 * The short version of `npm run fuzz`'s parser half (bench/lib/fuzz): every parser of untrusted
 * bytes, 2 000 inputs each, may accept or refuse with its refusal (FormatError), nothing else.
 * First, that the harness would notice if one did.
 */
import { describe, expect, it } from "vitest";
import { fuzzParser } from "../../bench/lib/fuzz/harness.ts";
import { mutateBytes } from "../../bench/lib/fuzz/mutate.ts";
import { PARSER_TARGETS } from "../../bench/lib/fuzz/parsers.ts";
import { bugsIn } from "../../bench/lib/fuzz/summary.ts";
import { FormatError } from "../../shared/src/errors.ts";

const INPUTS = 2000;

describe("the fuzz harness", () => {
  it("counts acceptances and FormatErrors, and keeps the inputs that threw anything else", async () => {
    // A parser that accepts inputs of even length, refuses those of length 1 mod 4, and has a
    // bug (a TypeError) on the others.
    const figures = await fuzzParser(
      {
        name: "fake",
        seeds: async () => [new Uint8Array(8)],
        generate: mutateBytes,
        parse: (bytes: Uint8Array) => {
          if (bytes.length % 2 === 0) return;
          if (bytes.length % 4 === 1) throw new FormatError("fake", "odd", "odd length");
          (undefined as unknown as { x: number }).x;
        },
        size: (bytes) => bytes.length,
        show: (bytes) => Buffer.from(bytes).toString("base64"),
      },
      { inputs: 500, seed: 3 },
    );
    expect(figures.inputs).toBe(500);
    expect(figures.accepted + figures.formatErrors + figures.otherErrors).toBe(500);
    expect(figures.accepted).toBeGreaterThan(0);
    expect(figures.codes["fake/odd"]).toBe(figures.formatErrors);
    expect(figures.otherErrors).toBeGreaterThan(0);
    expect(figures.failures[0].error).toMatch(/^TypeError/);
    expect(figures.failures[0].size % 4).toBe(3);
    expect(bugsIn({ parsers: [figures], http: [] })).toBe(figures.otherErrors);
  });

  it("counts an async parser's rejections", async () => {
    const figures = await fuzzParser(
      {
        name: "fake-async",
        seeds: async () => [new Uint8Array(4)],
        generate: mutateBytes,
        parse: async () => {
          throw new RangeError("not a refusal");
        },
        size: (bytes: Uint8Array) => bytes.length,
        show: String,
      },
      { inputs: 20, seed: 1 },
    );
    expect(figures.otherErrors).toBe(20);
  });

  it("treats a 5xx answer as a bug", () => {
    const route = {
      route: "POST /x",
      requests: 2,
      statuses: { 400: 1, 500: 1 },
      serverErrors: 1,
      slowest: { ms: 1, bytes: 1, status: 500 },
      failures: [],
    };
    expect(bugsIn({ parsers: [], http: [route] })).toBe(1);
  });
});

describe(`every parser, ${INPUTS} random and mutated inputs`, () => {
  it.each(PARSER_TARGETS.map((t) => [t.name, t]))(
    "%s refuses only with its refusal",
    async (_, target) => {
      const figures = await fuzzParser(target, { inputs: INPUTS, seed: 15 });
      expect(figures.failures.map((f) => `${f.error}\ninput (${f.size} B): ${f.input}`)).toEqual(
        [],
      );
      expect(figures.otherErrors).toBe(0);
      // The valid inputs pass, and mutations reach the checks.
      expect(figures.accepted).toBeGreaterThan(0);
      expect(figures.formatErrors).toBeGreaterThan(0);
    },
  );
});
