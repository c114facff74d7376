/** The periodic clean-up run by the cron trigger. */
import type { Env } from "../env.ts";
import { sweepIdempotencyKeys } from "./idempotency.ts";
import { requeueExpired } from "./queue/expiry.ts";
import { requeueLostDeliveries } from "./webhooks/deliveries.ts";
import { resealSecrets } from "./webhooks/secret.ts";

export type SweepReport = {
  expiredLeases: number;
  idempotencyKeysDropped: number;
  lostDeliveriesRequeued: number;
  webhookSecretsResealed: number;
};

export async function sweep(env: Env, now: number): Promise<SweepReport> {
  return {
    expiredLeases: await requeueExpired(env, now),
    idempotencyKeysDropped: await sweepIdempotencyKeys(env, now),
    lostDeliveriesRequeued: await requeueLostDeliveries(env, now),
    // Last: a key missing from WEBHOOK_KEYS stops only this.
    webhookSecretsResealed: await resealSecrets(env),
  };
}
