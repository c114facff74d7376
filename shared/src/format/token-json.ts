/**
 * The JSON form of token ids, a wire format for small downloads and uploads:
 *
 *   { "format": "revq-tokens", "version": 1, "tokenizer": "<64 hex>", "tokensPerRecord": T,
 *     "codesPerGroup": K, "groups": G, "records": [[id, ...], ...] }
 *
 * It carries the same header fields as the binary token stream (docs/token-stream.md), and is
 * validated as strictly: every record has T ids, every id is an integer in [0, K).
 */

import { z } from "zod";
import { FormatError } from "../errors.ts";
import {
  type DecodedTokens,
  MAX_CODES_PER_GROUP,
  MAX_TOKENS_PER_RECORD,
  MIN_CODES_PER_GROUP,
  makeTokenStreamHeader,
  type TokenStreamParams,
  validateTokens,
} from "./token-stream.ts";

export const TOKEN_JSON_FORMAT = "revq-tokens";
export const TOKEN_JSON_VERSION = 1;
/** Most ids (records × tokensPerRecord) one JSON document may hold; use the binary form beyond. */
export const TOKEN_JSON_MAX_TOKENS = 2 ** 22;

const FORMAT = "token-json";

export const TokenJsonSchema = z
  .strictObject({
    format: z.literal(TOKEN_JSON_FORMAT),
    version: z.literal(TOKEN_JSON_VERSION),
    tokenizer: z
      .string()
      .regex(
        /^[0-9a-f]{64}$/,
        "must be the tokenizer manifest's sha256 as 64 lowercase hex digits",
      ),
    tokensPerRecord: z.int().min(1).max(MAX_TOKENS_PER_RECORD),
    codesPerGroup: z.int().min(MIN_CODES_PER_GROUP).max(MAX_CODES_PER_GROUP),
    groups: z.int().min(1).max(MAX_TOKENS_PER_RECORD),
    // The outer bound is checked before any element, so a huge array is rejected at once.
    records: z
      .array(
        z
          .array(
            z
              .int()
              .min(0)
              .max(MAX_CODES_PER_GROUP - 1),
          )
          .max(MAX_TOKENS_PER_RECORD),
      )
      .max(TOKEN_JSON_MAX_TOKENS),
  })
  .superRefine(checkAgainstHeader);

export type TokenJson = z.infer<typeof TokenJsonSchema>;

/** The JSON form of N*T ids (record after record); ready for JSON.stringify. */
export function writeTokenJson(
  params: TokenStreamParams,
  tokens: Uint32Array | Int32Array,
): TokenJson {
  const header = validateTokens(params, tokens);
  const total = header.recordCount * header.tokensPerRecord;
  if (total > TOKEN_JSON_MAX_TOKENS) {
    throw new FormatError(
      FORMAT,
      "too-many-tokens",
      `${total} token ids exceed the ${TOKEN_JSON_MAX_TOKENS} a JSON document may hold; use the binary token stream`,
    );
  }
  const perRecord = header.tokensPerRecord;
  const records: number[][] = [];
  for (let r = 0; r < header.recordCount; r++) {
    records.push(Array.from(tokens.subarray(r * perRecord, (r + 1) * perRecord)));
  }
  return {
    format: TOKEN_JSON_FORMAT,
    version: TOKEN_JSON_VERSION,
    tokenizer: header.tokenizerHash,
    tokensPerRecord: perRecord,
    codesPerGroup: header.codesPerGroup,
    groups: header.groups,
    records,
  };
}

/** Validates a parsed JSON value and returns its header and ids, record after record. */
export function readTokenJson(value: unknown): DecodedTokens {
  const result = TokenJsonSchema.safeParse(value);
  if (!result.success) throw toFormatError(result.error);
  const json = result.data;
  const header = makeTokenStreamHeader(
    {
      tokenizerHash: json.tokenizer,
      tokensPerRecord: json.tokensPerRecord,
      codesPerGroup: json.codesPerGroup,
      groups: json.groups,
    },
    json.records.length,
  );
  const tokens = new Uint32Array(json.records.length * json.tokensPerRecord);
  json.records.forEach((record, r) => {
    tokens.set(record, r * json.tokensPerRecord);
  });
  return { header, tokens };
}

type TokenJsonShape = {
  tokensPerRecord: number;
  codesPerGroup: number;
  groups: number;
  records: number[][];
};

/**
 * The rules that tie fields together. Reports only the first bad record or id: a broken
 * document of a million ids should give one clear message, not a million.
 */
function checkAgainstHeader(json: TokenJsonShape, ctx: z.RefinementCtx): void {
  const { tokensPerRecord: perRecord, codesPerGroup, groups, records } = json;
  const fail = (code: string, path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message, params: { code } });
  if (groups > perRecord || perRecord % groups !== 0) {
    fail("bad-groups", ["groups"], `${groups} groups do not divide ${perRecord} tokens per record`);
    return;
  }
  if (records.length * perRecord > TOKEN_JSON_MAX_TOKENS) {
    fail(
      "too-many-tokens",
      ["records"],
      `${records.length} records of ${perRecord} exceed the ${TOKEN_JSON_MAX_TOKENS} ids a JSON document may hold`,
    );
    return;
  }
  for (let r = 0; r < records.length; r++) {
    const record = records[r];
    if (record.length !== perRecord) {
      fail("bad-token-count", ["records", r], `has ${record.length} ids, not ${perRecord}`);
      return;
    }
    const t = record.findIndex((id) => id >= codesPerGroup);
    if (t >= 0) {
      fail(
        "token-out-of-range",
        ["records", r, t],
        `id ${record[t]} is not below codesPerGroup ${codesPerGroup}`,
      );
      return;
    }
  }
}

/** The first issue, with its path, as a FormatError; custom checks carry their own code. */
function toFormatError(error: z.ZodError): FormatError {
  const issue = error.issues[0];
  const code =
    issue.code === "custom" && typeof issue.params?.code === "string"
      ? issue.params.code
      : "invalid";
  const path = issue.path.reduce<string>(
    (text, key) => (typeof key === "number" ? `${text}[${key}]` : `${text}.${String(key)}`),
    "document",
  );
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problems)` : "";
  return new FormatError(FORMAT, code, `${path}: ${issue.message}${more}`);
}
