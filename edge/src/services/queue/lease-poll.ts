/**
 * How often a long-polling lease call looks for work again. Soon at first, then less often while
 * nothing comes: a worker leases again as soon as it takes a task, so the next job usually
 * arrives early in a call and is seen within tens of milliseconds, while a quiet wait costs D1
 * at most a few checks a second. (A fixed 500 ms made half a second the floor of every job's
 * latency.)
 */
const FIRST_MS = 25;
const MAX_MS = 250;

/** The wait before check `n + 1` of a lease call that found nothing in its first n (n ≥ 1). */
export function pollDelayMs(checks: number): number {
  return Math.min(FIRST_MS * 2 ** (checks - 1), MAX_MS);
}
