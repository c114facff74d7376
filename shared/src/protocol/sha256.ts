/** SHA-256 through Web Crypto, which Node 22, Workers and browsers all provide. */

const encoder = new TextEncoder();

/** Lowercase hex SHA-256 of bytes, or of a string's UTF-8 encoding. */
export async function sha256Hex(data: Uint8Array | ArrayBuffer | string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", toBufferSource(data));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function toBufferSource(
  data: Uint8Array | ArrayBuffer | string,
): ArrayBuffer | Uint8Array<ArrayBuffer> {
  // encode() always returns a fresh ArrayBuffer; the cast is for typings (Workers') that say less.
  if (typeof data === "string") return encoder.encode(data) as Uint8Array<ArrayBuffer>;
  if (data instanceof ArrayBuffer) return data;
  // Web Crypto refuses views of a SharedArrayBuffer: copy those.
  return data.buffer instanceof ArrayBuffer
    ? (data as Uint8Array<ArrayBuffer>)
    : new Uint8Array(data);
}
