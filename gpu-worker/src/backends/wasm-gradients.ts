/**
 * Gradient kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks, built from ops it has, so that
 * training runs on wasm. Registered for the wasm backend only: other backends keep their native
 * kernels. Only @tensorflow/tfjs-core is used here, so this also works where wasm is bundled.
 *
 * - Conv2DBackpropFilter and DepthwiseConv2dNativeBackpropFilter: the filter gradient at tap
 *   (kh, kw) is the input window that tap saw (a strided slice of the padded input) contracted
 *   with dy over batch and positions; all taps at once as one matrix product.
 * - DepthwiseConv2dNativeBackpropInput: dy with zeros inserted between strides, correlated with
 *   the flipped filter (a transposed convolution).
 * - UnsortedSegmentSum (gather's gradient): ScatterNd, which sums updates to the same index.
 */

import * as tf from "@tensorflow/tfjs-core";

type Attrs = Record<string, unknown>;
type OpKernel = (inputs: Record<string, tf.Tensor>, attrs: Attrs) => tf.Tensor;

export function registerWasmGradientKernels(): void {
  const kernels: Record<string, OpKernel> = {
    [tf.Conv2DBackpropFilter]: (i, a) =>
      conv2dFilterGrad(i.x as tf.Tensor4D, i.dy as tf.Tensor4D, a),
    [tf.DepthwiseConv2dNativeBackpropFilter]: (i, a) =>
      depthwiseFilterGrad(i.x as tf.Tensor4D, i.dy as tf.Tensor4D, a),
    [tf.DepthwiseConv2dNativeBackpropInput]: (i, a) =>
      depthwiseInputGrad(i.dy as tf.Tensor4D, i.filter as tf.Tensor4D, a),
    [tf.UnsortedSegmentSum]: (i, a) =>
      unsortedSegmentSum(i.x, i.segmentIds, a.numSegments as number),
  };
  for (const [kernelName, kernel] of Object.entries(kernels)) {
    if (tf.getKernel(kernelName, "wasm")) continue; // a later wasm release may ship its own
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: fromOps(kernel) });
  }
}

/**
 * A kernel whose body is made of ops. Inside a kernel the engine records no gradients, and the
 * inputs are the tensors the op was called with. The result's data outlives the temporary tensor
 * that computed it through one extra reference, which the engine's output tensor takes over.
 */
function fromOps(kernel: OpKernel): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    for (const [name, input] of Object.entries(inputs)) {
      if (!(input instanceof tf.Tensor))
        throw new Error(`wasm gradient kernel: ${name} is no tensor`);
    }
    const out = tf.tidy(() => kernel(inputs as Record<string, tf.Tensor>, attrs as Attrs));
    (backend as unknown as { incRef(dataId: object): void }).incRef(out.dataId);
    const info = { dataId: out.dataId, shape: out.shape, dtype: out.dtype };
    out.dispose();
    return info;
  };
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

/** The input window each filter tap sees, stacked: [kh·kw, B, outH, outW, C]. */
function tapWindows(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor5D {
  const [, h, w] = x.shape;
  const spanH = (g.outH - 1) * g.sH + (g.kh - 1) * g.dH + 1;
  const spanW = (g.outW - 1) * g.sW + (g.kw - 1) * g.dW + 1;
  const padded = padOrCrop(x, [g.top, spanH - h - g.top], [g.left, spanW - w - g.left]);
  const taps: tf.Tensor4D[] = [];
  for (let i = 0; i < g.kh; i++) {
    for (let j = 0; j < g.kw; j++) {
      const begin = [0, i * g.dH, j * g.dW, 0];
      const end = [
        g.batch,
        i * g.dH + (g.outH - 1) * g.sH + 1,
        j * g.dW + (g.outW - 1) * g.sW + 1,
        x.shape[3],
      ];
      taps.push(tf.stridedSlice(padded, begin, end, [1, g.sH, g.sW, 1]) as tf.Tensor4D);
    }
  }
  return tf.stack(taps) as tf.Tensor5D;
}

/** Pads (positive) or crops (negative) the two spatial axes of an NHWC tensor. */
function padOrCrop(x: tf.Tensor4D, [top, bottom]: number[], [left, right]: number[]): tf.Tensor4D {
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
  const n = g.batch * g.outH * g.outW;
  const windows = tapWindows(x, g); // [kh·kw, B, oh, ow, ci]
  const cols = tf.reshape(tf.transpose(windows, [1, 2, 3, 0, 4]), [n, kh * kw * ci]);
  const grad = tf.matMul(cols, tf.reshape(dy, [n, co]), true, false); // [kh·kw·ci, co]
  return tf.reshape(grad, [kh, kw, ci, co]);
}

/** dW[kh,kw,c,m] = Σ_{b,y,x} window(kh,kw)[b,y,x,c]·dy[b,y,x,c·M+m], batched over c. */
function depthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: Attrs): tf.Tensor4D {
  const filterShape = attrs.filterShape as [number, number, number, number];
  const g = geometry(x.shape, filterShape, attrs, true);
  const [kh, kw, c, m] = filterShape;
  const n = g.batch * g.outH * g.outW;
  const windows = tf.reshape(tapWindows(x, g), [kh * kw, n, c]);
  const perChannel = tf.matMul(
    tf.transpose(windows, [2, 0, 1]), // [c, kh·kw, n]
    tf.transpose(tf.reshape(dy, [n, c, m]), [1, 0, 2]), // [c, n, m]
  ); // [c, kh·kw, m]
  return tf.reshape(tf.transpose(perChannel, [1, 0, 2]), [kh, kw, c, m]);
}

/** dx = dy (zeros between strides) correlated with the flipped filter, summed over multipliers. */
function depthwiseInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, attrs: Attrs): tf.Tensor4D {
  const inputShape = attrs.inputShape as [number, number, number, number];
  const g = geometry(inputShape, filter.shape, attrs, true);
  const [b, h, w, c] = inputShape;
  const [kh, kw, , m] = filter.shape;
  const spread = insertStrideZeros(dy, g.sH, g.sW);
  const framed = padOrCrop(
    spread,
    [(kh - 1) * g.dH - g.top, h + g.top - spread.shape[1]],
    [(kw - 1) * g.dW - g.left, w + g.left - spread.shape[2]],
  );
  const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]) as tf.Tensor4D;
  const perOutput = tf.depthwiseConv2d(framed, flipped, 1, "valid", "NHWC", [g.dH, g.dW]);
  return tf.sum(tf.reshape(perOutput, [b, h, w, c, m]), 4);
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

/** out[s, ...] = Σ over rows r with segmentIds[r] = s of x[r, ...]; ids must lie in [0, S). */
function unsortedSegmentSum(x: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  const rows = segmentIds.size;
  const rest = x.shape.slice(segmentIds.rank);
  const ids = tf.reshape(tf.cast(segmentIds, "int32"), [rows, 1]);
  return tf.scatterND(ids, tf.reshape(x, [rows, ...rest]), [numSegments, ...rest]);
}
