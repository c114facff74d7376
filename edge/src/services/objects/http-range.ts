/**
 * Single-range requests (RFC 9110 §14): `bytes=a-b`, `bytes=a-` and `bytes=-n`. A header with
 * several ranges is ignored (the whole object is sent), which the RFC allows; one that cannot
 * be satisfied is a 416.
 */
import type { ByteRange } from "@revq/shared";
import { HttpProblem } from "../../problem.ts";

/** The range asked for, or undefined for the whole object. */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = header.trim().match(/^bytes=(\d*)-(\d*)$/i);
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  const [first, last] = [match[1], match[2]];
  let start: number;
  let end: number; // inclusive
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0) throw unsatisfiable(header, size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== "" && Number(last) < start) return undefined; // invalid: ignore, per RFC
  }
  if (start >= size) throw unsatisfiable(header, size);
  return { offset: start, length: end - start + 1 };
}

function unsatisfiable(header: string, size: number): HttpProblem {
  return new HttpProblem(
    416,
    "range-not-satisfiable",
    `${header} is outside the ${size} bytes of the object.`,
    {
      headers: { "content-range": `bytes */${size}` },
    },
  );
}

export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`;
}

/** Whether If-None-Match names this strong ETag (or `*`). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || t === etag || t === `W/${etag}`;
  });
}
