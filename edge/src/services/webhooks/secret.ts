/**
 * Webhook signing secrets. The edge needs them in clear to sign, so it keeps them encrypted, not
 * hashed: AES-256-GCM under a key of the WEBHOOK_KEYS secret, a random 96-bit IV per value, the
 * row's id as associated data (a value copied onto another row does not open), the key's id in
 * the value. The first key encrypts, every listed key decrypts, and the cron sweep re-encrypts
 * what is under an older key (or still plain, from before encryption) so that a retired key
 * leaves nothing behind. docs/security.md, "Secrets at rest".
 */
import { and, eq, isNotNull, or, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import * as z from "zod";
import { database } from "../../db/client.ts";
import { jobs, webhookEndpoints } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";

/** A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64. */
export function newSigningSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

/** Encrypted values are `aes256gcm:<key id>:<IV>:<ciphertext and tag>`, both in base64url. */
const SCHEME = "aes256gcm";
/** Values written before encryption: still accepted, until the sweep re-encrypts them. */
const PLAIN_PREFIX = "whsec_";
/** Values one sweep re-encrypts per table, in one D1 batch. */
const RESEAL_BATCH = 100;

/** `id:base64key` entries, comma-separated; the id names the key in every value it encrypts. */
const WebhookKeys = z
  .string()
  .transform((s) => s.split(",").map((entry) => entry.trim()))
  .pipe(
    z
      .array(
        z
          .string()
          .regex(
            /^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=$/,
            "each entry is <id>:<32 bytes in base64>, the id 1 to 32 of A-Z a-z 0-9 _ -",
          ),
      )
      .refine((entries) => new Set(entries.map((e) => e.split(":")[0])).size === entries.length, {
        message: "a key id is listed twice",
      }),
  );

type Keyring = { currentId: string; keys: Map<string, CryptoKey> };

const keyrings = new WeakMap<Env, Promise<Keyring>>();

/** The keys of WEBHOOK_KEYS, imported once per environment; refused clearly when unusable. */
function keyringOf(env: Env): Promise<Keyring> {
  let keyring = keyrings.get(env);
  if (!keyring) {
    keyring = importKeys(env.WEBHOOK_KEYS);
    keyrings.set(env, keyring);
  }
  return keyring;
}

async function importKeys(setting: string | undefined): Promise<Keyring> {
  if (!setting) {
    throw new HttpProblem(
      503,
      "webhook-keys-not-configured",
      "Webhooks are off: the WEBHOOK_KEYS secret, which encrypts their signing secrets, is not set on this deployment.",
    );
  }
  const parsed = WebhookKeys.safeParse(setting);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => i.message).join("; ");
    throw new HttpProblem(
      500,
      "misconfigured",
      `The edge is misconfigured: WEBHOOK_KEYS: ${detail}`,
    );
  }
  const keys = new Map<string, CryptoKey>();
  for (const entry of parsed.data) {
    const [id, base64] = entry.split(":");
    const raw = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
    keys.set(
      id,
      await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]),
    );
  }
  return { currentId: parsed.data[0].split(":")[0], keys };
}

const encoder = new TextEncoder();

function toBase64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (ch) =>
    ch.charCodeAt(0),
  );
}

/** `secret` encrypted under the current key, bound to the row `rowId` it is stored in. */
export async function sealSecret(env: Env, secret: string, rowId: string): Promise<string> {
  const { currentId, keys } = await keyringOf(env);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(rowId) },
    keys.get(currentId) as CryptoKey,
    encoder.encode(secret),
  );
  return `${SCHEME}:${currentId}:${toBase64url(iv)}:${toBase64url(new Uint8Array(sealed))}`;
}

/** The secret that `stored` (a column's value, on row `rowId`) holds. */
export async function openSecret(env: Env, stored: string, rowId: string): Promise<string> {
  if (stored.startsWith(PLAIN_PREFIX)) return stored;
  const [scheme, keyId, iv, ciphertext] = stored.split(":");
  if (scheme !== SCHEME || ciphertext === undefined) {
    throw new Error(`the webhook secret of ${rowId} is neither encrypted nor a signing secret`);
  }
  const key = (await keyringOf(env)).keys.get(keyId);
  if (!key) {
    throw new HttpProblem(
      500,
      "misconfigured",
      `The edge is misconfigured: the webhook secret of ${rowId} is encrypted with key ${JSON.stringify(keyId)}, which WEBHOOK_KEYS no longer lists.`,
    );
  }
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: fromBase64url(iv), additionalData: encoder.encode(rowId) },
      key,
      fromBase64url(ciphertext),
    );
    return new TextDecoder().decode(plain);
  } catch {
    throw new Error(
      `the webhook secret of ${rowId} does not decrypt with key ${JSON.stringify(keyId)}: the key changed or the value was altered`,
    );
  }
}

/**
 * Values not under the current key: a range on each column's index, so that a sweep with
 * nothing to do reads nothing (`;` follows `:`).
 */
function notUnder(column: SQLiteColumn, currentId: string): SQL {
  const prefix = `${SCHEME}:${currentId}:`;
  return and(
    isNotNull(column),
    or(sql`${column} < ${prefix}`, sql`${column} >= ${`${prefix.slice(0, -1)};`}`),
  ) as SQL;
}

/** A stored value opened and sealed again under the current key. */
async function reseal(env: Env, row: { id: string; secret: string | null }): Promise<string> {
  return sealSecret(env, await openSecret(env, row.secret as string, row.id), row.id);
}

/**
 * Re-encrypts, under the current key, a batch of the secrets that are not: those of a key that
 * was current before, and plain ones kept before secrets were encrypted. Run by the cron sweep.
 * Without WEBHOOK_KEYS there is nothing it could do; the routes that need the key say so.
 */
export async function resealSecrets(env: Env): Promise<number> {
  if (!env.WEBHOOK_KEYS) return 0;
  const { currentId } = await keyringOf(env);
  const db = database(env);
  const [endpointRows, jobRows] = await Promise.all([
    db
      .select({ id: webhookEndpoints.id, secret: webhookEndpoints.secret })
      .from(webhookEndpoints)
      .where(notUnder(webhookEndpoints.secret, currentId))
      .limit(RESEAL_BATCH),
    db
      .select({ id: jobs.id, secret: jobs.webhookSecret })
      .from(jobs)
      .where(notUnder(jobs.webhookSecret, currentId))
      .limit(RESEAL_BATCH),
  ]);
  // Sealed first: a drizzle query is a thenable, so it must not be what an async callback returns.
  const [endpointSecrets, jobSecrets] = await Promise.all([
    Promise.all(endpointRows.map((row) => reseal(env, row))),
    Promise.all(jobRows.map((row) => reseal(env, row))),
  ]);
  const updates = [
    ...endpointRows.map((row, i) =>
      db
        .update(webhookEndpoints)
        .set({ secret: endpointSecrets[i] })
        .where(eq(webhookEndpoints.id, row.id)),
    ),
    ...jobRows.map((row, i) =>
      db.update(jobs).set({ webhookSecret: jobSecrets[i] }).where(eq(jobs.id, row.id)),
    ),
  ];
  if (updates.length === 0) return 0;
  const [first, ...rest] = updates;
  await db.batch([first, ...rest]);
  return updates.length;
}
