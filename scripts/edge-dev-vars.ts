/**
 * Writes .dev.vars (git-ignored) for `wrangler dev` if it does not exist yet: a fresh random
 * ADMIN_KEY and loopback webhooks allowed. Prints where the admin key is, never the key itself.
 */

import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";

const path = new URL("../.dev.vars", import.meta.url);

if (existsSync(path)) {
  console.log(".dev.vars exists; keeping it.");
} else {
  const adminKey = `rvq_admin_${randomBytes(32).toString("base64url")}`;
  writeFileSync(path, `ADMIN_KEY=${adminKey}\nALLOW_LOOPBACK_WEBHOOKS=true\n`, { mode: 0o600 });
  console.log("Wrote .dev.vars with a new ADMIN_KEY for local development.");
}
