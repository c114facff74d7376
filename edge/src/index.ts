/** The Worker: HTTP through the Hono app, webhook deliveries from the queue, sweeps from cron. */
import { app } from "./app.ts";
import type { Env } from "./env.ts";
import { sweep } from "./services/sweep.ts";

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, _env: Env): Promise<void> {
    // No messages are produced yet: acknowledge so nothing piles up.
    batch.ackAll();
  },
  async scheduled(controller: ScheduledController, env: Env): Promise<void> {
    await sweep(env, controller.scheduledTime);
  },
} satisfies ExportedHandler<Env>;
