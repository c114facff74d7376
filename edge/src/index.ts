/** The Worker: HTTP through the Hono app, webhook deliveries from the queue, sweeps from cron. */
import { app } from "./app.ts";
import type { Env } from "./env.ts";

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, _env: Env): Promise<void> {
    // No consumer work yet: acknowledge so nothing piles up.
    batch.ackAll();
  },
  async scheduled(_controller: ScheduledController, _env: Env): Promise<void> {},
} satisfies ExportedHandler<Env>;
