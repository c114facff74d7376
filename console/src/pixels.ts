/**
 * Images as pixels in the browser, to compare them: decoded without colour management (the
 * bytes' own values, as the worker's sharp reads them), optionally scaled to cover a size and
 * centre-cropped (the worker's input policy, here with the canvas's own resampling), and the
 * figures that compare two of the same size on their RGB values (alpha ignored).
 */

export type Size = { width: number; height: number };

/** Encoded image bytes (PNG, JPEG, WebP) → RGBA pixels, at `size` if given. */
export async function imagePixels(blob: Blob, size?: Size): Promise<ImageData> {
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  const width = size?.width ?? bitmap.width;
  const height = size?.height ?? bitmap.height;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d") as OffscreenCanvasRenderingContext2D;
  // Cover: the scale that fills the target, the overflow cut equally from both sides.
  const scale = Math.max(width / bitmap.width, height / bitmap.height);
  const w = bitmap.width * scale;
  const h = bitmap.height * scale;
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, (width - w) / 2, (height - h) / 2, w, h);
  bitmap.close();
  return context.getImageData(0, 0, width, height);
}

export type Comparison = {
  /** dB over the RGB values; Infinity when they are identical. */
  psnr: number;
  /** The largest difference of one 8-bit value. */
  maxAbsDiff: number;
};

export function compare(a: ImageData, b: ImageData): Comparison {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(`${a.width}×${a.height} and ${b.width}×${b.height} do not compare`);
  }
  let squares = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.data.length; i++) {
    if (i % 4 === 3) continue;
    const d = Math.abs(a.data[i] - b.data[i]);
    squares += d * d;
    if (d > maxAbsDiff) maxAbsDiff = d;
  }
  const mse = squares / (a.width * a.height * 3);
  return {
    psnr: mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse),
    maxAbsDiff,
  };
}

export function decibels(psnr: number): string {
  return Number.isFinite(psnr) ? `${psnr.toFixed(2)} dB` : "∞ (identical)";
}
