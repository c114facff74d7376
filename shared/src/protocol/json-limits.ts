/**
 * How much JSON the API takes. Whatever a request's JSON holds is stored in a D1 row (at most
 * 2 MB) and copied into every view, list page, task payload and webhook of it, so every JSON body
 * is bounded, and every free-form field within it more tightly.
 */
import type * as z from "zod";

/** Any JSON request body, edge-wide (413 beyond). */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;
/** A train job's `parameters`: every field the worker reads fits in a few hundred bytes. */
export const MAX_JOB_PARAMETERS_BYTES = 16 * 1024;
/** A tokenizer manifest, from an operator or a worker (the shipped ones are 2 to 9 KB). */
export const MAX_MANIFEST_BYTES = 64 * 1024;
/** One set of metrics, one job event (an encode of 2000 images reports one number each). */
export const MAX_METRICS_BYTES = 256 * 1024;

const utf8 = new TextEncoder();

/** Bytes of `value` as JSON text, UTF-8. */
export function jsonByteLength(value: unknown): number {
  return utf8.encode(JSON.stringify(value)).length;
}

/** `schema`, refusing values whose JSON is longer than `maxBytes`. */
export function boundedJson<T extends z.ZodType>(schema: T, maxBytes: number): T {
  return schema.refine(
    (value) => jsonByteLength(value) <= maxBytes,
    `must be at most ${maxBytes} bytes as JSON`,
  );
}
