import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  readTokenJson,
  TOKEN_JSON_MAX_TOKENS,
  TokenJsonSchema,
  writeTokenJson,
} from "../../shared/src/format/token-json.ts";
import {
  readTokenStream,
  type TokenStreamParams,
  writeTokenStream,
} from "../../shared/src/format/token-stream.ts";
import { formatError } from "../helpers/format-error.ts";

const HASH = "f".repeat(64);

const valid = {
  format: "revq-tokens",
  version: 1,
  tokenizer: HASH,
  tokensPerRecord: 4,
  codesPerGroup: 10,
  groups: 2,
  records: [
    [0, 1, 2, 9],
    [3, 4, 5, 6],
  ],
};

describe("token JSON", () => {
  it("writes the documented shape", () => {
    const params: TokenStreamParams = {
      tokenizerHash: HASH,
      tokensPerRecord: 4,
      codesPerGroup: 10,
      groups: 2,
    };
    expect(writeTokenJson(params, Uint32Array.of(0, 1, 2, 9, 3, 4, 5, 6))).toEqual(valid);
    expect(writeTokenJson(params, new Uint32Array(0)).records).toEqual([]);
  });

  it("round-trips through JSON text and agrees with the binary stream", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 2, max: 2 ** 24 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer(),
        (perRecord, codes, records, seed) => {
          const tokens = Uint32Array.from(
            { length: perRecord * records },
            (_, i) => Math.abs(Math.imul(i + 1, seed | 1)) % codes,
          );
          const params = {
            tokenizerHash: HASH,
            tokensPerRecord: perRecord,
            codesPerGroup: codes,
            groups: 1,
          };
          const text = JSON.stringify(writeTokenJson(params, tokens));
          const decoded = readTokenJson(JSON.parse(text));
          expect(decoded.tokens).toEqual(tokens);
          expect(decoded).toEqual(readTokenStream(writeTokenStream(params, tokens)));
        },
      ),
    );
  });

  it("rejects every kind of bad document with a code and a path", () => {
    const cases: [string, string, unknown][] = [
      ["invalid", "document.format", { ...valid, format: "revq" }],
      ["invalid", "document.version", { ...valid, version: 2 }],
      ["invalid", "document.tokenizer", { ...valid, tokenizer: HASH.toUpperCase() }],
      ["invalid", "document.tokenizer", { ...valid, tokenizer: HASH.slice(2) }],
      ["invalid", "document", { ...valid, extra: true }],
      ["invalid", "document.records", { ...valid, records: undefined }],
      ["invalid", "document.tokensPerRecord", { ...valid, tokensPerRecord: 0 }],
      ["invalid", "document.tokensPerRecord", { ...valid, tokensPerRecord: 65537 }],
      ["invalid", "document.codesPerGroup", { ...valid, codesPerGroup: 1 }],
      ["invalid", "document.codesPerGroup", { ...valid, codesPerGroup: 2 ** 24 + 1 }],
      [
        "invalid",
        "document.records[1][2]",
        {
          ...valid,
          records: [
            [0, 1, 2, 3],
            [0, 1, -1, 3],
          ],
        },
      ],
      ["invalid", "document.records[0][0]", { ...valid, records: [[0.5, 1, 2, 3]] }],
      ["invalid", "document.records[0][3]", { ...valid, records: [[0, 1, 2, "3"]] }],
      ["invalid", "document", null],
      ["invalid", "document", [1, 2]],
      ["bad-groups", "document.groups", { ...valid, groups: 3 }],
      ["bad-groups", "document.groups", { ...valid, groups: 8 }],
      [
        "bad-token-count",
        "document.records[1]",
        {
          ...valid,
          records: [
            [0, 1, 2, 3],
            [0, 1, 2],
          ],
        },
      ],
      ["token-out-of-range", "document.records[0][1]", { ...valid, records: [[0, 10, 2, 3]] }],
    ];
    for (const [code, path, value] of cases) {
      const error = formatError(() => readTokenJson(value));
      expect(error.code, JSON.stringify(value)).toBe(code);
      expect(error.format).toBe("token-json");
      expect(error.message).toContain(`${path}:`);
    }
  });

  it("says which id is out of range", () => {
    const error = formatError(() =>
      readTokenJson({
        ...valid,
        records: [
          [0, 1, 2, 3],
          [0, 1, 12, 3],
        ],
      }),
    );
    expect(error.message).toBe(
      "token-json: document.records[1][2]: id 12 is not below codesPerGroup 10",
    );
  });

  it("limits the number of ids a document may hold", () => {
    const record = new Array(65536).fill(0);
    const records = new Array(Math.floor(TOKEN_JSON_MAX_TOKENS / 65536) + 1).fill(record);
    const big = { ...valid, tokensPerRecord: 65536, groups: 1, records };
    expect(formatError(() => readTokenJson(big)).code).toBe("too-many-tokens");
    const manyRecords = { ...valid, records: new Array(TOKEN_JSON_MAX_TOKENS + 1).fill([]) };
    expect(formatError(() => readTokenJson(manyRecords)).message).toContain("document.records");
    const params = { tokenizerHash: HASH, tokensPerRecord: 65536, codesPerGroup: 2, groups: 1 };
    const tokens = new Uint32Array(TOKEN_JSON_MAX_TOKENS + 65536);
    expect(formatError(() => writeTokenJson(params, tokens)).code).toBe("too-many-tokens");
  });

  it("validates ids on write too", () => {
    const params = { tokenizerHash: HASH, tokensPerRecord: 2, codesPerGroup: 3, groups: 1 };
    expect(formatError(() => writeTokenJson(params, Uint32Array.of(0, 3))).code).toBe(
      "token-out-of-range",
    );
    expect(formatError(() => writeTokenJson(params, Uint32Array.of(0))).code).toBe(
      "bad-token-count",
    );
  });

  it("has a schema that converts to JSON Schema for the API document", () => {
    const schema = z.toJSONSchema(TokenJsonSchema) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties).sort()).toEqual(
      [
        "codesPerGroup",
        "format",
        "groups",
        "records",
        "tokenizer",
        "tokensPerRecord",
        "version",
      ].sort(),
    );
  });
});
