import sharp from "sharp";

/** A strip of square crops side by side (a PNG) → count × side × side × 3 values in [-1, 1]. */
export async function readCropStrip(
  file: string,
  side: number,
): Promise<{ images: Float32Array; count: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  const count = info.width / side;
  const images = new Float32Array(count * side * side * 3);
  for (let n = 0; n < count; n++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side * 3; x++) {
        images[(n * side + y) * side * 3 + x] =
          data[y * info.width * 3 + n * side * 3 + x] / 127.5 - 1;
      }
    }
  }
  return { images, count };
}
