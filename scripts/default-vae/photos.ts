/**
 * The default VAE's data: the photos scripts/fetch-photos.sh puts in .revq/cache/photos, decoded
 * once at several scales, and 64×64 crops of them. Training crops are random but seeded (photo,
 * scale, position and horizontal flip from one Rng), so a run is the same every time; held-out
 * crops are a fixed grid. Scales are given as the short side in pixels: 64 is the whole photo
 * fitted the way the worker fits its inputs (cover + centre crop), larger ones are closer views.
 */

import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Rng } from "@revq/shared";
import sharp from "sharp";

/** One photo resized so that its short side is `scale`: 8-bit interleaved RGB. */
export type ScaledPhoto = {
  file: string;
  scale: number;
  width: number;
  height: number;
  pixels: Uint8Array;
};

export const CROP = 64;
export const TRAIN_SCALES = [64, 96, 128, 192, 256, 384, 512];

/** The files of one split (sorted by name, so the order never depends on the file system). */
export function photoFiles(dir: string): string[] {
  const files = readdirSync(dir)
    .filter((f) => /\.(png|jpe?g)$/i.test(f))
    .sort();
  if (files.length === 0) throw new Error(`no photos in ${dir}: run scripts/fetch-photos.sh`);
  return files.map((f) => join(dir, f));
}

/** Every photo at every scale up to its own short side (photos are never enlarged). */
export async function loadScaled(files: string[], scales: number[]): Promise<ScaledPhoto[]> {
  const out: ScaledPhoto[] = [];
  for (const file of files) {
    const { width = 0, height = 0 } = await sharp(file).metadata();
    for (const scale of scales) {
      if (scale > Math.min(width, height)) continue;
      const ratio = scale / Math.min(width, height);
      const w = Math.max(scale, Math.round(width * ratio));
      const h = Math.max(scale, Math.round(height * ratio));
      const { data, info } = await sharp(file)
        .toColourspace("srgb")
        .removeAlpha()
        .resize({ width: w, height: h, fit: "fill" })
        .raw({ depth: "uchar" })
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`${file} decoded to ${info.channels} channels`);
      out.push({
        file,
        scale,
        width: info.width,
        height: info.height,
        pixels: new Uint8Array(data),
      });
    }
  }
  return out;
}

/** A 64×64 crop at (x, y), optionally mirrored, written as [-1, 1] floats at `offset` of `into`. */
export function cropInto(
  photo: ScaledPhoto,
  x: number,
  y: number,
  flip: boolean,
  into: Float32Array,
  offset: number,
): void {
  let k = offset;
  for (let row = 0; row < CROP; row++) {
    for (let col = 0; col < CROP; col++) {
      const source = ((y + row) * photo.width + x + (flip ? CROP - 1 - col : col)) * 3;
      for (let c = 0; c < 3; c++) into[k++] = photo.pixels[source + c] / 127.5 - 1;
    }
  }
}

/** `count` random crops: each picks a photo, then one of its scales, then a position and a flip. */
export function randomCrops(byPhoto: ScaledPhoto[][], count: number, rng: Rng): Float32Array {
  const out = new Float32Array(count * CROP * CROP * 3);
  for (let i = 0; i < count; i++) {
    // Photo first, so a photo with more scales (a larger original) is not drawn more often.
    const scales = byPhoto[rng.nextInt(byPhoto.length)];
    const photo = scales[rng.nextInt(scales.length)];
    const x = rng.nextInt(photo.width - CROP + 1);
    const y = rng.nextInt(photo.height - CROP + 1);
    cropInto(photo, x, y, rng.nextFloat() < 0.5, out, i * CROP * CROP * 3);
  }
  return out;
}

/** The photos grouped per file, for randomCrops. */
export function groupByFile(photos: ScaledPhoto[]): ScaledPhoto[][] {
  const groups = new Map<string, ScaledPhoto[]>();
  for (const p of photos) groups.set(p.file, [...(groups.get(p.file) ?? []), p]);
  return [...groups.values()];
}

/** A named held-out crop: `<file>@<scale>:<x>,<y>`. */
export type FixedCrop = { name: string; scale: number; pixels: Float32Array };

/**
 * An n×n grid of crops evenly spread over each photo at each scale, n = scale / 64 (capped at 4):
 * 1 crop of the whole photo at 64, 4 at 128, 4×4 at 256 and above.
 */
export function gridCrops(photos: ScaledPhoto[]): FixedCrop[] {
  const out: FixedCrop[] = [];
  for (const photo of photos) {
    const n = Math.min(4, Math.round(photo.scale / CROP));
    for (let gy = 0; gy < n; gy++) {
      for (let gx = 0; gx < n; gx++) {
        const x =
          n === 1 ? (photo.width - CROP) >> 1 : Math.round((gx * (photo.width - CROP)) / (n - 1));
        const y =
          n === 1 ? (photo.height - CROP) >> 1 : Math.round((gy * (photo.height - CROP)) / (n - 1));
        const pixels = new Float32Array(CROP * CROP * 3);
        cropInto(photo, x, y, false, pixels, 0);
        const file = photo.file.split("/").pop();
        out.push({ name: `${file}@${photo.scale}:${x},${y}`, scale: photo.scale, pixels });
      }
    }
  }
  return out;
}
