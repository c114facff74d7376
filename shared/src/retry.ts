/**
 * Waiting out a service that is down (the edge, the bucket): exponential backoff with jitter, so
 * that many clients that lost it at the same moment do not all come back at the same moment.
 */

export type BackoffPolicy = {
  /** The first wait, before jitter. */
  initialMs: number;
  /** No wait is longer than this. */
  maxMs: number;
};

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 15_000 };

/**
 * The wait before retry number `attempt` (0 for the first retry): the exponential step
 * initialMs·2^attempt capped at maxMs, of which a random half is drawn ("equal jitter": never
 * less than half the step, so a retry loop can never spin).
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const step = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return step / 2 + random() * (step / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export type RetryOptions = {
  policy?: BackoffPolicy;
  /** Whether an error is worth another try (the service was unreachable, answered 5xx...). */
  retryable: (error: unknown) => boolean;
  /** Stops retrying at once (shutdown). */
  signal?: AbortSignal;
  /** Epoch ms after which no further try starts: the last error is thrown instead. */
  deadline?: number;
  /** Told before each wait. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
};

/** Runs `fn` until it succeeds, fails with an error not worth retrying, or time runs out. */
export async function retrying<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const policy = options.policy ?? DEFAULT_BACKOFF;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (options.signal?.aborted || !options.retryable(error)) throw error;
      const delay = backoffDelay(attempt, policy, options.random);
      if (options.deadline !== undefined && Date.now() + delay >= options.deadline) throw error;
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}
