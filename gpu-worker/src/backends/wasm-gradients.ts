/**
 * Gradient kernels for @tensorflow/tfjs-backend-wasm 4.22, built from ops it runs fast (XNNPACK
 * convolutions and untransposed matrix products), so that training runs on wasm. Registered for
 * the wasm backend only: other backends keep their native kernels. Only @tensorflow/tfjs-core is
 * used here, so this also works where wasm is bundled.
 *
 * Missing in wasm:
 * - Conv2DBackpropFilter and DepthwiseConv2dNativeBackpropFilter: at stride 1 a convolution's
 *   filter gradient is a convolution of the transposed input with dy; otherwise, and for
 *   depthwise ones, the filter gradient at tap (kh, kw) is the input window that tap saw (a
 *   strided slice of the padded input) contracted with dy over batch and positions; all taps at
 *   once as one matrix product.
 * - DepthwiseConv2dNativeBackpropInput: dy with zeros inserted between strides, correlated with
 *   the flipped filter (a transposed convolution).
 * - UnsortedSegmentSum (gather's gradient): ScatterNd, which sums updates to the same index.
 *
 * Present but slow (plain loops, 1–2 GFLOP/s where XNNPACK does several times that), replaced:
 * - Conv2DBackpropInput: the same transposed convolution as the depthwise one, with XNNPACK.
 * - BatchMatMul with a transposed operand (every matmul gradient has one): transpose explicitly,
 *   then the untransposed product.
 */

import * as tf from "@tensorflow/tfjs-core";
import { type Attrs, fromOps, type OpKernel, segmentSumKernel } from "./op-kernels.ts";

let registered = false;

export function registerWasmGradientKernels(): void {
  if (registered) return;
  registered = true;
  const missing: Record<string, OpKernel> = {
    [tf.Conv2DBackpropFilter]: (i, a) =>
      conv2dFilterGrad(i.x as tf.Tensor4D, i.dy as tf.Tensor4D, a),
    [tf.DepthwiseConv2dNativeBackpropFilter]: (i, a) =>
      depthwiseFilterGrad(i.x as tf.Tensor4D, i.dy as tf.Tensor4D, a),
    [tf.DepthwiseConv2dNativeBackpropInput]: (i, a) =>
      depthwiseInputGrad(i.dy as tf.Tensor4D, i.filter as tf.Tensor4D, a),
  };
  for (const [kernelName, kernel] of Object.entries(missing)) {
    if (tf.getKernel(kernelName, "wasm")) continue; // a later wasm release may ship its own
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: fromOps(kernel) });
  }
  if (!tf.getKernel(tf.UnsortedSegmentSum, "wasm")) tf.registerKernel(segmentSumKernel("wasm"));
  replace(tf.Conv2DBackpropInput, () =>
    fromOps((i, a) => conv2dInputGrad(i.dy as tf.Tensor4D, i.filter as tf.Tensor4D, a)),
  );
  replace(tf.BatchMatMul, (original) => {
    const untransposed = fromOps((i, a) =>
      tf.matMul(a.transposeA ? swapLastAxes(i.a) : i.a, a.transposeB ? swapLastAxes(i.b) : i.b),
    );
    return (args) =>
      args.attrs?.transposeA || args.attrs?.transposeB
        ? untransposed(args)
        : original.kernelFunc(args);
  });
}

/** Re-registers a wasm kernel (keeping its setup, which binds the wasm functions). */
function replace(name: string, make: (original: tf.KernelConfig) => tf.KernelFunc): void {
  const original = tf.getKernel(name, "wasm");
  if (!original) throw new Error(`the wasm backend has no ${name} kernel to replace`);
  tf.unregisterKernel(name, "wasm");
  tf.registerKernel({ ...original, kernelFunc: make(original) });
}

function swapLastAxes(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  perm.push(...perm.splice(-2).reverse());
  return tf.transpose(x, perm);
}

type ConvGeometry = {
  batch: number;
  outH: number;
  outW: number;
  kh: number;
  kw: number;
  sH: number;
  sW: number;
  dH: number;
  dW: number;
  top: number;
  left: number;
};

function geometry(
  inShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: Attrs,
  depthwise: boolean,
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attrs.strides as [number, number] | number,
    (attrs.dilations ?? 1) as [number, number] | number,
    attrs.pad as "valid" | "same" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    depthwise,
    (attrs.dataFormat === "NCHW" ? "channelsFirst" : "channelsLast") as "channelsLast",
  );
  if (attrs.dataFormat === "NCHW") throw new Error("wasm gradient kernels support NHWC only");
  return {
    batch: info.batchSize,
    outH: info.outHeight,
    outW: info.outWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sH: info.strideHeight,
    sW: info.strideWidth,
    dH: info.dilationHeight,
    dW: info.dilationWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/**
 * fn of the input window each filter tap sees ([B, outH, outW, C]), in (kh, kw) order. Each call
 * runs in its own tidy, so only its result outlives it: a 3×3 tap set of a wide layer would
 * otherwise hold nine window-sized tensors at once.
 */
function mapTaps<T extends tf.Tensor>(
  x: tf.Tensor4D,
  g: ConvGeometry,
  fn: (tap: tf.Tensor4D) => T,
): T[] {
  const [, h, w, c] = x.shape;
  const identity = g.kh * g.kw === 1 && g.sH * g.sW === 1 && g.top + g.left === 0;
  if (identity && g.outH === h && g.outW === w) return [tf.tidy(() => fn(x))]; // 1×1
  const spanH = (g.outH - 1) * g.sH + (g.kh - 1) * g.dH + 1;
  const spanW = (g.outW - 1) * g.sW + (g.kw - 1) * g.dW + 1;
  const padded = padOrCrop(x, [g.top, spanH - h - g.top], [g.left, spanW - w - g.left]);
  const results: T[] = [];
  for (let i = 0; i < g.kh; i++) {
    for (let j = 0; j < g.kw; j++) {
      const begin = [0, i * g.dH, j * g.dW, 0];
      const end = [
        g.batch,
        begin[1] + (g.outH - 1) * g.sH + 1,
        begin[2] + (g.outW - 1) * g.sW + 1,
        c,
      ];
      const strides = [1, g.sH, g.sW, 1];
      results.push(tf.tidy(() => fn(tf.stridedSlice(padded, begin, end, strides) as tf.Tensor4D)));
    }
  }
  return results;
}

/** Pads (positive) or crops (negative) the two spatial axes of an NHWC tensor. */
function padOrCrop(x: tf.Tensor4D, [top, bottom]: number[], [left, right]: number[]): tf.Tensor4D {
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return x;
  const padded = tf.pad(x, [
    [0, 0],
    [Math.max(top, 0), Math.max(bottom, 0)],
    [Math.max(left, 0), Math.max(right, 0)],
    [0, 0],
  ]);
  const [, h, w] = padded.shape;
  const cropTop = Math.max(-top, 0);
  const cropLeft = Math.max(-left, 0);
  return tf.slice(
    padded,
    [0, cropTop, cropLeft, 0],
    [-1, h - cropTop - Math.max(-bottom, 0), w - cropLeft - Math.max(-right, 0), -1],
  );
}

/** dW[kh,kw,ci,co] = Σ_{b,y,x} window(kh,kw)[b,y,x,ci]·dy[b,y,x,co]. */
function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: Attrs): tf.Tensor4D {
  const filterShape = attrs.filterShape as [number, number, number, number];
  const g = geometry(x.shape, filterShape, attrs, false);
  const [kh, kw, ci, co] = filterShape;
  if (g.sH * g.sW * g.dH * g.dW === 1 && kh * kw > 1)
    return filterGradByConv(x, dy, g, filterShape);
  const n = g.batch * g.outH * g.outW;
  const taps = mapTaps(x, g, (tap) => tap);
  const cols = taps.length === 1 ? taps[0] : tf.concat(taps, 3); // [B, oh, ow, kh·kw·ci]
  const rows = tf.transpose(tf.reshape(cols, [n, kh * kw * ci])); // [kh·kw·ci, n]
  return tf.reshape(tf.matMul(rows, tf.reshape(dy, [n, co])), [kh, kw, ci, co]);
}

/**
 * At stride 1 the filter gradient is itself a correlation: of the input with dy as the filter,
 * the batch playing the channels that are summed. XNNPACK's convolution does that several times
 * faster than the windows + matMul above (a 3×3 layer, 32 channels at 32×32, batch 16: ~20 ms
 * instead of ~80). Transposes go through rank 3: wasm transposes rank 4 several times slower.
 */
function filterGradByConv(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  g: ConvGeometry,
  [kh, kw, ci, co]: [number, number, number, number],
): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const xt = tf.reshape(tf.transpose(tf.reshape(x, [b, h * w, ci]), [2, 1, 0]), [ci, h, w, b]);
  const dyt = tf.reshape(tf.transpose(tf.reshape(dy, [b, g.outH * g.outW, co]), [1, 0, 2]), [
    g.outH,
    g.outW,
    b,
    co,
  ]) as tf.Tensor4D;
  // Framed so that the valid correlation has exactly kh × kw positions.
  const framed = padOrCrop(
    xt as tf.Tensor4D,
    [g.top, kh - 1 + g.outH - h - g.top],
    [g.left, kw - 1 + g.outW - w - g.left],
  );
  const taps = tf.reshape(tf.conv2d(framed, dyt, 1, "valid"), [ci, kh * kw, co]);
  return tf.reshape(tf.transpose(taps, [1, 0, 2]), [kh, kw, ci, co]);
}

/**
 * dW[kh,kw,c,m] = Σ_{b,y,x} window(kh,kw)[b,y,x,c]·dy[b,y,x,c·M+m]: per tap, the products summed
 * over positions by a matrix product with ones (a sum over a middle axis would transpose first).
 */
function depthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: Attrs): tf.Tensor4D {
  const filterShape = attrs.filterShape as [number, number, number, number];
  const g = geometry(x.shape, filterShape, attrs, true);
  const [kh, kw, c, m] = filterShape;
  const n = g.batch * g.outH * g.outW;
  const perOutput = tf.reshape(dy, [n, c, m]);
  const ones = tf.ones([1, n]);
  const sums = mapTaps(x, g, (tap) => {
    const products = tf.mul(tf.reshape(tap, [n, c, 1]), perOutput);
    return tf.matMul(ones, tf.reshape(products, [n, c * m])); // [1, c·m]
  });
  return tf.reshape(tf.concat(sums), [kh, kw, c, m]);
}

/** dx = dy (zeros between strides) correlated with the flipped filter, in and out swapped. */
function conv2dInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, attrs: Attrs): tf.Tensor4D {
  const inputShape = attrs.inputShape as [number, number, number, number];
  const g = geometry(inputShape, filter.shape, attrs, false);
  const [kh, kw, ci, co] = filter.shape;
  // [kh,kw,ci,co] → [kh,kw,co,ci] through rank 3: wasm transposes rank 4 several times slower.
  const taps = tf.reshape(tf.reverse(filter, [0, 1]), [kh * kw, ci, co]);
  const flipped = tf.reshape(tf.transpose(taps, [0, 2, 1]), [kh, kw, co, ci]) as tf.Tensor4D;
  return tf.conv2d(transposedConvInput(dy, inputShape, g, kh, kw), flipped, 1, "valid");
}

/** dx = dy (zeros between strides) correlated with the flipped filter, summed over multipliers. */
function depthwiseInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, attrs: Attrs): tf.Tensor4D {
  const inputShape = attrs.inputShape as [number, number, number, number];
  const g = geometry(inputShape, filter.shape, attrs, true);
  const [b, h, w, c] = inputShape;
  const [kh, kw, , m] = filter.shape;
  const framed = transposedConvInput(dy, inputShape, g, kh, kw);
  const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]) as tf.Tensor4D;
  const perOutput = tf.depthwiseConv2d(framed, flipped, 1, "valid", "NHWC", [g.dH, g.dW]);
  return tf.sum(tf.reshape(perOutput, [b, h, w, c, m]), 4);
}

/** dy spread to stride 1 and framed so that a valid correlation with a k×k filter gives [B,H,W,·]. */
function transposedConvInput(
  dy: tf.Tensor4D,
  [, h, w]: [number, number, number, number],
  g: ConvGeometry,
  kh: number,
  kw: number,
): tf.Tensor4D {
  const spread = insertStrideZeros(dy, g.sH, g.sW);
  return padOrCrop(
    spread,
    [(kh - 1) * g.dH - g.top, h + g.top - spread.shape[1]],
    [(kw - 1) * g.dW - g.left, w + g.left - spread.shape[2]],
  );
}

/** [B,H,W,C] → [B,(H−1)·sH+1,(W−1)·sW+1,C] with dy at every stride-th position, zeros between. */
function insertStrideZeros(dy: tf.Tensor4D, sH: number, sW: number): tf.Tensor4D {
  if (sH === 1 && sW === 1) return dy;
  const [b, h, w, c] = dy.shape;
  const spaced = tf.pad(tf.reshape(dy, [b, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sH - 1],
    [0, 0],
    [0, sW - 1],
    [0, 0],
  ]);
  const full = tf.reshape(spaced, [b, h * sH, w * sW, c]) as tf.Tensor4D;
  return tf.slice(full, [0, 0, 0, 0], [-1, (h - 1) * sH + 1, (w - 1) * sW + 1, -1]);
}
