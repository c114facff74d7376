/**
 * Reconstruction quality of images in [-1, 1] (count × H × W × 3, interleaved RGB, as the VAE
 * interface gives them), measured on [0, 1] after clamping, as images are saved:
 *
 * - PSNR = 10·log10(1 / MSE) per image, over all three channels;
 * - SSIM (Wang et al. 2004): 11×11 Gaussian window with σ 1.5, K1 0.01, K2 0.03, data range 1,
 *   over the windows that fit inside the image ("valid", as the paper's MATLAB code), per channel
 *   and averaged. Images smaller than 11 pixels use the largest odd window that fits.
 *
 * Both are returned per image; callers average.
 */

export type ImageSize = { height: number; width: number };

const SSIM_WINDOW = 11;
const SSIM_SIGMA = 1.5;
const C1 = 0.01 ** 2;
const C2 = 0.03 ** 2;

export function psnr(
  a: Float32Array,
  b: Float32Array,
  count: number,
  size: ImageSize,
): Float64Array {
  const each = checkImages(a, b, count, size);
  const out = new Float64Array(count);
  for (let n = 0; n < count; n++) {
    let sum = 0;
    for (let i = n * each; i < (n + 1) * each; i++) {
      const d = toUnit(a[i]) - toUnit(b[i]);
      sum += d * d;
    }
    out[n] = sum === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(each / sum);
  }
  return out;
}

export function ssim(
  a: Float32Array,
  b: Float32Array,
  count: number,
  size: ImageSize,
): Float64Array {
  const each = checkImages(a, b, count, size);
  const { height, width } = size;
  const side = Math.min(SSIM_WINDOW, oddAtMost(height), oddAtMost(width));
  const kernel = gaussian(side, SSIM_SIGMA);
  const plane = height * width;
  const x = new Float64Array(plane);
  const y = new Float64Array(plane);
  const products = [new Float64Array(plane), new Float64Array(plane), new Float64Array(plane)];
  const out = new Float64Array(count);
  for (let n = 0; n < count; n++) {
    let total = 0;
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        x[p] = toUnit(a[n * each + p * 3 + c]);
        y[p] = toUnit(b[n * each + p * 3 + c]);
        products[0][p] = x[p] * x[p];
        products[1][p] = y[p] * y[p];
        products[2][p] = x[p] * y[p];
      }
      const [mx, my, mxx, myy, mxy] = [x, y, ...products].map((v) => filterValid(v, size, kernel));
      let sum = 0;
      for (let i = 0; i < mx.length; i++) {
        const vx = mxx[i] - mx[i] * mx[i];
        const vy = myy[i] - my[i] * my[i];
        const cov = mxy[i] - mx[i] * my[i];
        sum +=
          ((2 * mx[i] * my[i] + C1) * (2 * cov + C2)) /
          ((mx[i] * mx[i] + my[i] * my[i] + C1) * (vx + vy + C2));
      }
      total += sum / mx.length;
    }
    out[n] = total / 3;
  }
  return out;
}

function toUnit(v: number): number {
  return Math.min(1, Math.max(0, (v + 1) / 2));
}

function oddAtMost(n: number): number {
  return n % 2 === 1 ? n : n - 1;
}

/** Normalised 1-D Gaussian of `side` taps. */
function gaussian(side: number, sigma: number): Float64Array {
  const half = (side - 1) / 2;
  const k = Float64Array.from({ length: side }, (_, i) =>
    Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)),
  );
  const sum = k.reduce((s, v) => s + v, 0);
  return k.map((v) => v / sum);
}

/** Separable Gaussian filter, valid part only: (H, W) → (H − k + 1, W − k + 1). */
function filterValid(v: Float64Array, { height, width }: ImageSize, k: Float64Array): Float64Array {
  const outW = width - k.length + 1;
  const outH = height - k.length + 1;
  const rows = new Float64Array(height * outW);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outW; x++) {
      let s = 0;
      for (let t = 0; t < k.length; t++) s += k[t] * v[y * width + x + t];
      rows[y * outW + x] = s;
    }
  }
  const out = new Float64Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let s = 0;
      for (let t = 0; t < k.length; t++) s += k[t] * rows[(y + t) * outW + x];
      out[y * outW + x] = s;
    }
  }
  return out;
}

function checkImages(
  a: Float32Array,
  b: Float32Array,
  count: number,
  { height, width }: ImageSize,
): number {
  const each = height * width * 3;
  if (a.length !== count * each || b.length !== count * each) {
    throw new RangeError(
      `${count} images of ${height}×${width}×3 need ${count * each} values, got ${a.length} and ${b.length}`,
    );
  }
  return each;
}
