/**
 * Images in and out of the pipelines, with sharp (libvips).
 *
 * The input policy, as the paper's data pipeline: scale so that the image covers the tokenizer's
 * input resolution (for a square resolution: the short side becomes the resolution), then crop
 * the centre. Before that the EXIF orientation is applied; the pixels are converted to sRGB
 * (embedded ICC profiles honoured; grey becomes three equal channels), and an alpha channel is
 * dropped as it is (PIL's convert("RGB"), which training pipelines use), not composited. The
 * resampling kernel is sharp's default, Lanczos-3 (antialiased when shrinking). Values map
 * linearly from 0..255 to [-1, 1].
 */
import sharp from "sharp";
import type { ImageSize } from "../models/vae.ts";

/** Encoded image bytes (PNG, JPEG, WebP) → H·W·3 values in [-1, 1]; throws if undecodable. */
export async function decodeImage(bytes: Uint8Array, size: ImageSize): Promise<Float32Array> {
  const { data, info } = await sharp(bytes, { failOn: "error" })
    .rotate()
    .toColourspace("srgb")
    .removeAlpha()
    .resize({ width: size.width, height: size.height, fit: "cover", position: "centre" })
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size.width || info.height !== size.height || info.channels !== 3) {
    throw new Error(
      `decoded to ${info.width}×${info.height}×${info.channels}, expected ${size.width}×${size.height}×3`,
    );
  }
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] / 127.5 - 1;
  return out;
}

/** H·W·3 values in [-1, 1] (clamped; rounded to the nearest level) → PNG bytes. */
export async function encodePng(image: Float32Array, size: ImageSize): Promise<Uint8Array> {
  const pixels = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) {
    pixels[i] = Math.round(Math.min(1, Math.max(-1, image[i])) * 127.5 + 127.5);
  }
  const png = await sharp(pixels, { raw: { width: size.width, height: size.height, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}
