import type { D1Migration } from "cloudflare:test";
import type { Env } from "../../edge/src/env.ts";

// Types of the test runtime: the Worker's bindings plus the migrations vitest.config.ts passes in,
// and the main module, so that `exports.default.fetch` is typed.
declare global {
  namespace Cloudflare {
    interface Env extends RevqEnv {
      TEST_MIGRATIONS: D1Migration[];
      /** Base URL of the loopback webhook receiver (tests/edge/global/webhook-receiver.ts). */
      WEBHOOK_RECEIVER: string;
      /** 2 requests per 10 s (vitest.config.ts), for tests/edge/rate-limits.test.ts. */
      TEST_RATE_LIMIT: RateLimit;
    }
    interface GlobalProps {
      mainModule: typeof import("../../edge/src/index.ts");
    }
  }
}

type RevqEnv = Env;
