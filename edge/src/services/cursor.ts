/**
 * Cursors of paged lists: an opaque token naming where the last page stopped. Lists newest first
 * name the last id shown (ids sort by creation time, ids.ts: the next page is the ids before it);
 * a dataset's images, in the order added, name the last position shown.
 */
import { HttpProblem } from "../problem.ts";

const encode = (value: object) => btoa(JSON.stringify(value)).replaceAll("=", "");

function decode(cursor: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(atob(cursor));
    if (typeof value === "object" && value !== null) return value as Record<string, unknown>;
  } catch {}
  throw invalidCursor();
}

const invalidCursor = () =>
  new HttpProblem(400, "invalid-cursor", "The cursor is not one this API gave out.");

export function encodeCursor(id: string): string {
  return encode({ before: id });
}

export function decodeCursor(cursor: string): string {
  const { before } = decode(cursor);
  if (typeof before === "string") return before;
  throw invalidCursor();
}

export function encodePositionCursor(position: number): string {
  return encode({ after: position });
}

export function decodePositionCursor(cursor: string): number {
  const { after } = decode(cursor);
  if (Number.isSafeInteger(after) && (after as number) >= 0) return after as number;
  throw invalidCursor();
}
