/**
 * API, worker and admin keys. A key is 32 random bytes; only its SHA-256 is stored, which is
 * enough for a secret with that much entropy (there is nothing to brute-force, so no slow hash).
 */
import { sha256Hex } from "@revq/shared";

export type KeyKind = "api" | "worker";

const KIND_TAG: Record<KeyKind, string> = { api: "api", worker: "wrk" };

/** How many leading characters of a key are kept in the clear to tell keys apart. */
const PREFIX_CHARS = 12;

export type MintedKey = { key: string; hash: string; prefix: string };

export async function mintKey(kind: KeyKind): Promise<MintedKey> {
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const key = `rvq_${KIND_TAG[kind]}_${secret}`;
  return { key, hash: await sha256Hex(key), prefix: key.slice(0, PREFIX_CHARS) };
}

export function hashKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/** Constant-time equality of two secrets, compared through their digests so lengths match. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
