/**
 * Canonical JSON: the same value always gives the same text, so a hash of the text can identify
 * the value. Object keys are sorted by UTF-16 code units at every level, there is no whitespace,
 * and strings and numbers are written as JSON.stringify writes them, which is what RFC 8785 (JCS)
 * specifies for them; for the values manifests hold the output is RFC 8785's.
 */
import { FormatError } from "../errors.ts";

/**
 * Only JSON values are accepted: null, booleans, finite numbers, strings, arrays and plain objects.
 * Anything else throws rather than being written the way JSON.stringify would (NaN as null, Dates
 * via toJSON), since another implementation might write it differently and hash differently.
 * Object properties that are undefined are left out, as JSON.stringify does: `{a: 1, b: undefined}`
 * and `{a: 1}` are the same document.
 */
export function canonicalJson(value: unknown): string {
  return write(value, "$", new Set());
}

function fail(path: string, problem: string): never {
  throw new FormatError("canonical-json", "unsupported-value", `${path}: ${problem}`);
}

function write(value: unknown, path: string, ancestors: Set<object>): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail(path, `${value} is not a finite number`);
    return JSON.stringify(value);
  }
  if (typeof value !== "object") fail(path, `a ${typeof value} is not a JSON value`);
  if (ancestors.has(value)) fail(path, "the value contains itself");
  ancestors.add(value);
  const text = Array.isArray(value)
    ? writeArray(value, path, ancestors)
    : writeObject(value, path, ancestors);
  ancestors.delete(value);
  return text;
}

function writeArray(items: unknown[], path: string, ancestors: Set<object>): string {
  // Array.from visits holes (as undefined, which is refused) where map would skip them.
  const parts = Array.from(items, (item, i) => write(item, `${path}[${i}]`, ancestors));
  return `[${parts.join(",")}]`;
}

function writeObject(object: object, path: string, ancestors: Set<object>): string {
  const prototype = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) {
    fail(path, `a ${object.constructor?.name ?? "non-plain"} object is not a JSON value`);
  }
  const record = object as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    if (record[key] === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${write(record[key], `${path}.${key}`, ancestors)}`);
  }
  return `{${parts.join(",")}}`;
}
