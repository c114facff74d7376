/**
 * D1 binds at most 100 parameters per statement, which is why lookups of many ids go in chunks
 * of ID_CHUNK. (Images per job, MAX_JOB_IMAGES, are @revq/shared's: the CLI checks them too.)
 */
export const ID_CHUNK = 90;

/** Retry backoff after a retryable failure: 10 s doubling per attempt, at most 15 min, ±20 %. */
export function retryDelayMs(attempt: number, random = Math.random()): number {
  const base = Math.min(10_000 * 2 ** (attempt - 1), 15 * 60_000);
  return Math.round(base * (0.8 + 0.4 * random));
}
