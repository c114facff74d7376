/**
 * The Worker: HTTP through the Hono app, webhook deliveries from the queue, sweeps from cron.
 * routes/ (one router per API area) call services/ (queue/, jobs/, objects/, webhooks/ and one
 * file per smaller concern) over db/; docs/architecture.md, "Where things live", maps it.
 */
import { app } from "./app.ts";
import { configOf } from "./config.ts";
import type { Env } from "./env.ts";
import { sweep } from "./services/sweep.ts";
import { handleWebhookBatch } from "./services/webhooks/deliveries.ts";

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    await handleWebhookBatch(batch, env, configOf(env));
  },
  async scheduled(controller: ScheduledController, env: Env): Promise<void> {
    await sweep(env, controller.scheduledTime);
  },
} satisfies ExportedHandler<Env>;
