/**
 * Registers a tokenizer folder (manifest.json beside its files, as revq-train and
 * scripts/train-default-tokenizer.ts write one) as a public tokenizer of an edge, local or
 * deployed: what `npm start` does for models/default-tokenizer, for any edge.
 *
 *   REVQ_ADMIN_KEY=... npm run register-tokenizer -- --url https://revq.example.com models/default-tokenizer
 *
 * The admin key comes from REVQ_ADMIN_KEY or, for a loopback URL, from ADMIN_KEY in .dev.vars.
 * Registering is idempotent: files already stored are not sent again. Files over the Workers
 * request-size limit (100 MB on most plans) must go through the S3 door first (docs/api.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Admin } from "./start/admin.ts";
import { ROOT } from "./start/options.ts";
import { registerTokenizerFolder } from "./start/tokenizer-folder.ts";

function fail(message: string, code = 1): never {
  process.stderr.write(`register-tokenizer: ${message}\n`);
  process.exit(code);
}

function adminKey(url: URL): string {
  if (process.env.REVQ_ADMIN_KEY) return process.env.REVQ_ADMIN_KEY;
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    fail("set REVQ_ADMIN_KEY to the deployment's ADMIN_KEY secret", 2);
  }
  const match = readFileSync(join(ROOT, ".dev.vars"), "utf8").match(/^ADMIN_KEY=(.+)$/m);
  return match ? match[1].trim() : fail("no REVQ_ADMIN_KEY, and .dev.vars has no ADMIN_KEY", 2);
}

function args(): { url: URL; dir: string } {
  try {
    const { values, positionals } = parseArgs({
      options: { url: { type: "string" } },
      allowPositionals: true,
    });
    if (values.url && positionals.length === 1) {
      return { url: new URL(values.url), dir: positionals[0] };
    }
  } catch {
    // the usage below says it all
  }
  return fail("usage: npm run register-tokenizer -- --url <edge URL> <tokenizer folder>", 2);
}

const { url, dir } = args();
try {
  const registered = await registerTokenizerFolder(new Admin(url.origin, adminKey(url)), dir);
  process.stdout.write(`${JSON.stringify(registered)}\n`);
} catch (error) {
  fail((error as Error).message);
}
