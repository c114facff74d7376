/**
 * The edge's paged lists (newest first, `limit` ≤ 100 a page, `nextCursor` to go on), read until
 * `limit` items or the end: the one loop behind every `list` command.
 */
import type * as z from "zod";
import type { Api } from "./api.ts";

/** The most items the edge gives in one page. */
const PAGE_LIMIT = 100;

export async function collectPages<S extends z.ZodType<{ nextCursor: string | null }>, T>(
  api: Api,
  path: string,
  schema: S,
  items: (page: z.infer<S>) => T[],
  limit: number,
  query: Record<string, string | undefined> = {},
): Promise<T[]> {
  const found: T[] = [];
  let cursor: string | undefined;
  while (found.length < limit) {
    const page = await api.json("GET", path, schema, {
      query: { ...query, limit: Math.min(PAGE_LIMIT, limit - found.length), cursor },
    });
    found.push(...items(page));
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return found;
}
