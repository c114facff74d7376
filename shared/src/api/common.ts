/**
 * The client API's shapes used by many: times and page links. The edge validates with these
 * schemas and documents them (their `meta` becomes the OpenAPI document); the CLI checks the
 * edge's answers with the same ones.
 */
import * as z from "zod";

/** Times on the wire: ISO 8601 in UTC. */
export const Timestamp = z.iso.datetime().meta({ example: "2026-11-26T12:00:00.000Z" });

/** A paged list's link to its next page. */
export const NextCursor = z
  .string()
  .nullable()
  .meta({ description: "Pass as `cursor` for the next page; null at the end." });
