/**
 * A folder of images (PNG, JPEG, WebP; sorted by name) as an ImageSource, fitted to the VAE's
 * resolution as the worker fits uploads (images/codec.ts). Its identity (names, sizes, times)
 * keys the latent cache.
 */

import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { canonicalJson, sha256Hex } from "@revq/shared";
import { decodeImage } from "../images/codec.ts";
import type { ImageSize } from "../models/vae.ts";
import type { ImageSource } from "./extract.ts";

const IMAGE_FILE = /\.(png|jpe?g|webp)$/i;

export type ImageFolder = ImageSource & { names: string[]; identity: string };

export async function imageFolder(dir: string, size: ImageSize): Promise<ImageFolder> {
  const names = (await readdir(dir)).filter((n) => IMAGE_FILE.test(n)).sort();
  if (names.length === 0) throw new Error(`${dir} holds no PNG, JPEG or WebP images`);
  const listing = await Promise.all(
    names.map(async (name) => {
      const { size: bytes, mtimeMs } = await stat(join(dir, name));
      return [name, bytes, mtimeMs];
    }),
  );
  return {
    names,
    count: names.length,
    identity: await sha256Hex(canonicalJson({ images: listing, size })),
    async load(index) {
      const name = names[index];
      try {
        return await decodeImage(new Uint8Array(await readFile(join(dir, name))), size);
      } catch (error) {
        throw new Error(
          `${join(dir, name)} could not be read as an image: ${(error as Error).message}`,
        );
      }
    },
  };
}
