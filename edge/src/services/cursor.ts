/**
 * Cursors of paged lists, newest first: an opaque token naming the last id a page showed. Ids sort
 * by creation time (ids.ts), so the next page is the ids before it.
 */
import { HttpProblem } from "../problem.ts";

export function encodeCursor(id: string): string {
  return btoa(JSON.stringify({ before: id })).replaceAll("=", "");
}

export function decodeCursor(cursor: string): string {
  try {
    const { before } = JSON.parse(atob(cursor)) as { before: unknown };
    if (typeof before === "string") return before;
  } catch {}
  throw new HttpProblem(400, "invalid-cursor", "The cursor is not one this API gave out.");
}
