/**
 * Conversions between the shapes token ids take in the product: one flat array of N*T ids
 * (record after record), one array per record, Int32Array for tensors, and .npy files of int32
 * with shape (N, T). The JSON form is in token-json.ts.
 */

import { FormatError } from "../errors.ts";
import { readNpy, writeNpy } from "./npy.ts";
import { type DecodedTokens, type TokenStreamParams, validateTokens } from "./token-stream.ts";

/** One view per record into `tokens` (no copy). */
export function splitRecords(tokens: Uint32Array, tokensPerRecord: number): Uint32Array[] {
  checkWholeRecords(tokens.length, tokensPerRecord);
  const records: Uint32Array[] = [];
  for (let start = 0; start < tokens.length; start += tokensPerRecord) {
    records.push(tokens.subarray(start, start + tokensPerRecord));
  }
  return records;
}

/** Records (e.g. from TokenStreamDecoder) copied into one flat array. */
export function joinRecords(
  records: readonly ArrayLike<number>[],
  tokensPerRecord: number,
): Uint32Array {
  const tokens = new Uint32Array(records.length * tokensPerRecord);
  records.forEach((record, r) => {
    if (record.length !== tokensPerRecord) {
      throw new FormatError(
        "token-stream",
        "bad-token-count",
        `record ${r} has ${record.length} ids, not ${tokensPerRecord}`,
      );
    }
    tokens.set(record, r * tokensPerRecord);
  });
  return tokens;
}

/**
 * The same ids as Int32Array (what tensor libraries take), sharing memory. Exact because every
 * id is below 2^24.
 */
export function tokensAsInt32(tokens: Uint32Array): Int32Array {
  return new Int32Array(tokens.buffer, tokens.byteOffset, tokens.length);
}

/** A .npy file of int32 with shape (N, T), after checking the ids against `params`. */
export function writeTokenNpy(
  params: TokenStreamParams,
  tokens: Uint32Array | Int32Array,
): Uint8Array {
  const header = validateTokens(params, tokens);
  const int32 = tokens instanceof Int32Array ? tokens : tokensAsInt32(tokens);
  return writeNpy(int32, [header.recordCount, header.tokensPerRecord]);
}

/**
 * Token ids from a .npy file of shape (N, T) and any integer dtype (numpy's default int64
 * included), checked against `params`: T must match and every id must be in [0, K).
 */
export function readTokenNpy(bytes: Uint8Array, params: TokenStreamParams): DecodedTokens {
  const array = readNpy(bytes);
  if (array.dtype === "<f4" || array.dtype === "<f8") {
    throw new FormatError(
      "npy",
      "bad-token-dtype",
      `token ids must be integers, got dtype '${array.dtype}'`,
    );
  }
  const [records, perRecord] = array.shape;
  if (array.shape.length !== 2 || perRecord !== params.tokensPerRecord) {
    throw new FormatError(
      "npy",
      "bad-token-shape",
      `token ids must have shape (N, ${params.tokensPerRecord}), got (${array.shape.join(", ")})`,
    );
  }
  // Number() keeps int64 values exact up to 2^53 and maps larger ones to larger numbers,
  // so the range check below still rejects them.
  const ids =
    array.dtype === "<i8" || array.dtype === "<u8"
      ? Float64Array.from(array.data, Number)
      : array.data;
  const header = validateTokens(params, ids);
  const tokens = new Uint32Array(records * perRecord);
  tokens.set(ids);
  return { header, tokens };
}

function checkWholeRecords(count: number, tokensPerRecord: number): void {
  if (!Number.isInteger(tokensPerRecord) || tokensPerRecord < 1 || count % tokensPerRecord !== 0) {
    throw new FormatError(
      "token-stream",
      "bad-token-count",
      `${count} token ids are not a whole number of records of ${tokensPerRecord}`,
    );
  }
}
