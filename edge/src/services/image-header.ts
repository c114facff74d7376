/**
 * Tells PNG, JPEG and WebP apart by their magic bytes and reads the pixel size from their
 * headers, without decoding a pixel: cheap enough to run on every upload in a Worker. It also
 * walks the container far enough to notice a file cut short (PNG chunks up to IEND, JPEG segments
 * up to the scan and an EOI after it, the RIFF length of WebP). Decoding is the GPU worker's job.
 */
import { crc32, FormatError } from "@revq/shared";

export type ImageFormat = "png" | "jpeg" | "webp";

export const IMAGE_MEDIA_TYPES: Record<ImageFormat, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
};

export type ImageInfo = { format: ImageFormat; width: number; height: number };

const FORMAT = "image";

function fail(code: string, message: string): never {
  throw new FormatError(FORMAT, code, message);
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return prefix.every((b, i) => bytes[at + i] === b);
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const ascii = (text: string) => Array.from(text, (ch) => ch.charCodeAt(0));

/**
 * Reads format and size. Throws FormatError("image", code): `unknown-format` (no known magic),
 * `truncated`, `bad-header`, `zero-size`.
 */
export function readImageHeader(bytes: Uint8Array): ImageInfo {
  if (startsWith(bytes, PNG_SIGNATURE)) return readPng(bytes);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return readJpeg(bytes);
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8))
    return readWebp(bytes);
  return fail(
    "unknown-format",
    "the bytes are not a PNG, JPEG or WebP image (no known magic number)",
  );
}

function checkSize(format: string, width: number, height: number): void {
  if (width === 0 || height === 0)
    fail("zero-size", `the ${format} header says ${width}×${height} pixels`);
}

// PNG: signature, then chunks (length u32 BE, type, data, CRC); IHDR first, IEND last.
function readPng(bytes: Uint8Array): ImageInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33)
    fail("truncated", `a PNG needs at least 33 bytes of header, got ${bytes.length}`);
  if (view.getUint32(8) !== 13 || !startsWith(bytes, ascii("IHDR"), 12)) {
    fail("bad-header", "the PNG does not start with a 13-byte IHDR chunk");
  }
  if (crc32(bytes.subarray(12, 29)) !== view.getUint32(29))
    fail("bad-header", "the PNG IHDR chunk fails its CRC");
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  checkSize("PNG", width, height);
  let offset = 33;
  let sawData = false;
  for (;;) {
    if (offset + 12 > bytes.length)
      fail("truncated", `the PNG ends inside a chunk header at byte ${offset} (no IEND)`);
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    const end = offset + 12 + length;
    if (end > bytes.length)
      fail("truncated", `the PNG ends inside its ${type} chunk at byte ${offset}`);
    if (type === "IDAT") sawData = true;
    if (type === "IEND") break;
    offset = end;
  }
  if (!sawData) fail("bad-header", "the PNG has no IDAT chunk");
  return { format: "png", width, height };
}

// JPEG: markers FF xx; segments carry a u16 BE length that counts itself. The size is in the
// first SOFn segment; the entropy-coded scan after SOS runs to the EOI marker FF D9.
const SOF_MARKERS = new Set([
  0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf,
]);

function readJpeg(bytes: Uint8Array): ImageInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 2;
  let size: { width: number; height: number } | undefined;
  for (;;) {
    if (offset + 4 > bytes.length)
      fail("truncated", `the JPEG ends at byte ${bytes.length}, before its image data`);
    if (bytes[offset] !== 0xff) fail("bad-header", `no JPEG marker at byte ${offset}`);
    const marker = bytes[offset + 1];
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    const length = view.getUint16(offset + 2);
    if (length < 2) fail("bad-header", `the JPEG segment at byte ${offset} has length ${length}`);
    const end = offset + 2 + length;
    if (end > bytes.length) fail("truncated", `the JPEG ends inside the segment at byte ${offset}`);
    if (SOF_MARKERS.has(marker) && !size) {
      if (length < 8) fail("bad-header", "the JPEG frame header is too short");
      size = { height: view.getUint16(offset + 5), width: view.getUint16(offset + 7) };
    }
    if (marker === 0xda) {
      if (!size) fail("bad-header", "the JPEG scan starts before any frame header (SOFn)");
      if (!hasMarkerAfter(bytes, end, 0xd9))
        fail("truncated", "the JPEG has no end-of-image marker after its scan");
      checkSize("JPEG", size.width, size.height);
      return { format: "jpeg", ...size };
    }
    offset = end;
  }
}

/** Whether FF `marker` occurs at or after `from`; searched from the end, where EOI sits. */
function hasMarkerAfter(bytes: Uint8Array, from: number, marker: number): boolean {
  for (let i = bytes.length - 2; i >= from; i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === marker) return true;
  }
  return false;
}

const u24 = (bytes: Uint8Array, at: number) =>
  bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);

// WebP: RIFF <u32 LE size> WEBP, then a VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk.
function readWebp(bytes: Uint8Array): ImageInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 30)
    fail("truncated", `a WebP needs at least 30 bytes of header, got ${bytes.length}`);
  const riffEnd = 8 + view.getUint32(4, true);
  if (riffEnd > bytes.length)
    fail("truncated", `the WebP RIFF header says ${riffEnd} bytes, the file has ${bytes.length}`);
  const chunk = String.fromCharCode(...bytes.subarray(12, 16));
  let width: number;
  let height: number;
  if (chunk === "VP8 ") {
    if (!startsWith(bytes, [0x9d, 0x01, 0x2a], 23))
      fail("bad-header", "the WebP VP8 frame has no start code");
    width = view.getUint16(26, true) & 0x3fff;
    height = view.getUint16(28, true) & 0x3fff;
  } else if (chunk === "VP8L") {
    if (bytes[20] !== 0x2f) fail("bad-header", "the WebP VP8L stream has no signature byte");
    const bits = view.getUint32(21, true);
    width = (bits & 0x3fff) + 1;
    height = ((bits >>> 14) & 0x3fff) + 1;
  } else if (chunk === "VP8X") {
    width = u24(bytes, 24) + 1;
    height = u24(bytes, 27) + 1;
  } else {
    return fail("bad-header", `the WebP starts with an unknown chunk ${JSON.stringify(chunk)}`);
  }
  checkSize("WebP", width, height);
  return { format: "webp", width, height };
}
