/** The periodic clean-up run by the cron trigger. */
import type { Env } from "../env.ts";
import { sweepIdempotencyKeys } from "./idempotency.ts";

export type SweepReport = { idempotencyKeysDropped: number };

export async function sweep(env: Env, now: number): Promise<SweepReport> {
  return { idempotencyKeysDropped: await sweepIdempotencyKeys(env, now) };
}
