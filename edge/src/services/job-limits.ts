/**
 * Sizes of jobs. A task payload lives in one D1 row (D1 rows are at most 2 MB, and one image
 * entry is about 200 bytes of JSON), and D1 binds at most 100 parameters per statement, which is
 * why lookups of many ids go in chunks of ID_CHUNK.
 */
export const MAX_JOB_IMAGES = 2000;
export const ID_CHUNK = 90;

/** Retry backoff after a retryable failure: 10 s doubling per attempt, at most 15 min, ±20 %. */
export function retryDelayMs(attempt: number, random = Math.random()): number {
  const base = Math.min(10_000 * 2 ** (attempt - 1), 15 * 60_000);
  return Math.round(base * (0.8 + 0.4 * random));
}
