/**
 * The default tokenizer's training crops, and the 8-bit round trip its evaluation measures
 * against (what PNG and JPEG store): seeded random 64×64 crops of the training photos through
 * the default VAE's own crop pipeline (../default-vae/photos.ts).
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "@revq/shared";
import sharp from "sharp";
import {
  CROP,
  groupByFile,
  loadScaled,
  photoFiles,
  randomCrops,
  TRAIN_SCALES,
} from "../default-vae/photos.ts";

/** `count` seeded random crops of the training photos as PNGs (skipped when already written). */
export async function writeCrops(
  photos: string,
  dir: string,
  count: number,
  seed: number,
  log: (message: string) => void,
): Promise<void> {
  if (existsSync(dir) && readdirSync(dir).filter((n) => n.endsWith(".png")).length === count) {
    log(`${count} crops in ${dir} (kept)`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const trainPhotos = groupByFile(
    await loadScaled(photoFiles(join(photos, "train")), TRAIN_SCALES),
  );
  const rng = new Rng(seed);
  const each = CROP * CROP * 3;
  const chunk = 256;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const pixels = randomCrops(trainPhotos, n, rng);
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        sharp(toBytes(pixels.subarray(i * each, (i + 1) * each)), {
          raw: { width: CROP, height: CROP, channels: 3 },
        })
          .png()
          .toFile(join(dir, `crop-${String(start + i).padStart(6, "0")}.png`)),
      ),
    );
  }
  log(`${count} crops written to ${dir}`);
}

/** Pixels in [-1, 1] → 8-bit values. */
export function toBytes(pixels: Float32Array): Uint8Array {
  return Uint8Array.from(pixels, (v) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5))));
}

/** 8-bit values → pixels in [-1, 1]. */
export function fromBytes(bytes: Uint8Array): Float32Array {
  return Float32Array.from(bytes, (v) => v / 127.5 - 1);
}
