/**
 * The elementary layers, channels-last (NHWC), with PyTorch's semantics: convolutions pad k/2 on
 * every side (PyTorch's `padding=k//2`), RMSNorm normalises over channels with weight and bias.
 */

import * as tf from "@tensorflow/tfjs-core";
import { rmsNormOp } from "../../ops/rms-norm.ts";
import { siluOp } from "../../ops/silu.ts";

/** A convolution: filter [kh, kw, in, out] (HWIO), optional bias [out]. */
export type Conv = { filter: tf.Tensor4D; bias: tf.Tensor1D | null };
/** A depthwise convolution: filter [kh, kw, channels, 1], optional bias [channels]. */
export type Depthwise = { filter: tf.Tensor4D; bias: tf.Tensor1D | null };
export type RmsNorm = { weight: tf.Tensor1D; bias: tf.Tensor1D; eps: number };

/** [B,H,W,Cin] → [B,H/stride,W/stride,Cout]. */
export function conv2d(p: Conv, x: tf.Tensor4D, stride: 1 | 2 = 1): tf.Tensor4D {
  const k = p.filter.shape[0];
  const half = (k - 1) / 2;
  // With stride 1 "same" is exactly PyTorch's symmetric k/2 padding; with stride 2 it is not
  // (TensorFlow puts the odd pixel at the end), so pad explicitly.
  const pad =
    stride === 1
      ? "same"
      : ([
          [0, 0],
          [half, half],
          [half, half],
          [0, 0],
        ] as [[number, number], [number, number], [number, number], [number, number]]);
  return tf.fused.conv2d({ x, filter: p.filter, strides: stride, pad, bias: p.bias ?? undefined });
}

/** [B,H,W,C] → [B,H,W,C], one k×k filter per channel. */
export function depthwise(p: Depthwise, x: tf.Tensor4D): tf.Tensor4D {
  return tf.fused.depthwiseConv2d({
    x,
    filter: p.filter,
    strides: 1,
    pad: "same",
    bias: p.bias ?? undefined,
  });
}

/** A bias-free linear layer over channels: [B,H,W,Cin] · [Cin,Cout] → [B,H,W,Cout]. */
export function linear(weight: tf.Tensor2D, x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const flat = tf.matMul(tf.reshape(x, [b * h * w, c]), weight);
  return tf.reshape(flat, [b, h, w, weight.shape[1]]);
}

/**
 * y = x / sqrt(mean_c x² + eps) · weight + bias (+ residual), over the last (channel) axis; one
 * op, with the block's skip connection added in the same pass.
 */
export function rmsNorm(p: RmsNorm, x: tf.Tensor4D, residual?: tf.Tensor4D): tf.Tensor4D {
  return rmsNormOp(x, p.weight, p.bias, p.eps, residual);
}

/** x·sigmoid(x); one op. */
export function silu<T extends tf.Tensor>(x: T): T {
  return siluOp(x);
}
