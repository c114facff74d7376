/**
 * Writes .dev.vars (git-ignored) for `wrangler dev` if it does not exist yet, as npm start does
 * (scripts/start/edge.ts): a fresh random ADMIN_KEY and WEBHOOK_KEYS, loopback webhooks allowed.
 * Prints where the admin key is, never the key itself.
 */

import { ensureDevVars } from "./start/edge.ts";

if (ensureDevVars().created) {
  console.log("Wrote .dev.vars with a new ADMIN_KEY for local development.");
} else {
  console.log(".dev.vars exists; keeping it.");
}
