/**
 * Identifiers: a type prefix, then 10 characters of creation time in milliseconds and 16 random
 * ones (80 bits), in lowercase Crockford base32. Ids of one type sort by creation time, which is
 * what cursor pagination orders by; the random part makes them unguessable.
 */
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

export type IdPrefix =
  | "ten"
  | "key"
  | "img"
  | "job"
  | "tsk"
  | "tok"
  | "whk"
  | "dlv"
  | "lse"
  | "dst"
  | "tks";

export function newId(prefix: IdPrefix, now = Date.now()): string {
  let time = "";
  for (let i = 0, t = now; i < TIME_CHARS; i++, t = Math.floor(t / 32)) {
    time = ALPHABET[t % 32] + time;
  }
  // 256 is a multiple of 32, so `byte & 31` is uniform.
  const random = crypto.getRandomValues(new Uint8Array(RANDOM_CHARS));
  return `${prefix}_${time}${Array.from(random, (b) => ALPHABET[b & 31]).join("")}`;
}

const ID_PATTERN = /^[a-z]{3}_[0-9a-hjkmnp-tv-z]{26}$/;

/** Whether `value` looks like an id of this type; routes use it to answer 404 without a query. */
export function isId(prefix: IdPrefix, value: string): boolean {
  return value.startsWith(`${prefix}_`) && ID_PATTERN.test(value);
}
