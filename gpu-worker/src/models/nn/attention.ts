/**
 * Sana's multiscale ReLU linear attention (diffusers `SanaMultiscaleLinearAttention`), NHWC.
 *
 * q|k|v come from three bias-free linears (fused here into one [C, 3I] matrix). Each multiscale
 * branch adds a depthwise k×k conv and a grouped 1×1 conv (3·heads groups of d) on top of them.
 * The concatenated channels [qkv | branch...] split into consecutive groups of 3d, one per head,
 * each read as (query d, key d, value d) — not the to_q/to_k/to_v split: the original DC-AE had
 * one fused qkv conv, which diffusers' converter cut in three.
 */

import * as tf from "@tensorflow/tfjs-core";
import { groupedPointwiseOp } from "../../ops/grouped-pointwise.ts";
import { linearAttentionOp } from "../../ops/linear-attention.ts";
import { type Depthwise, depthwise, linear, type RmsNorm, rmsNorm } from "./layers.ts";
import type { Probe } from "./probe.ts";

export type MultiscaleBranch = {
  depthwise: Depthwise; // [k, k, 3I, 1], no bias
  pointwise: tf.Tensor3D; // [3·heads, d_in, d_out]: the grouped 1×1 conv
};

export type Attention = {
  headDim: number;
  qkv: tf.Tensor2D; // [C, 3I]: to_q | to_k | to_v
  branches: MultiscaleBranch[];
  out: tf.Tensor2D; // [(1 + branches)·I, C]
  norm: RmsNorm;
};

/** x + norm(to_out(attention(x))): [B,H,W,C] → [B,H,W,C]. */
export function multiscaleAttention(p: Attention, x: tf.Tensor4D, probe: Probe): tf.Tensor4D {
  const qkv = linear(p.qkv, x); // [B,H,W,3I]
  recordQkv(probe, qkv);
  const branches = [qkv, ...p.branches.map((branch) => multiscale(branch, qkv))];
  branches.slice(1).forEach((t, i) => {
    probe.at(`to_qkv_multiscale.${i}`).record("out", () => t);
  });
  // Concatenated along channels, as diffusers does: wasm splits the gradient of a channel
  // concatenation quickly, but that of a middle axis of a rank-5 tensor very slowly.
  const all = branches.length === 1 ? branches[0] : tf.concat(branches, 3); // [B,H,W,G·3d]
  // diffusers takes the quadratic form (q·kᵀ)·v when there are no more tokens than head
  // channels: the same function with other rounding (fixtures D, 8×16), so the fused linear
  // form serves every size.
  const merged = linearAttentionOp(all, p.headDim); // [B,H,W,G·d]
  probe.at("to_out").record("in", () => merged);
  const projected = linear(p.out, merged);
  probe.at("to_out").record("out", () => projected);
  probe.at("norm_out").record("out", () => rmsNorm(p.norm, projected));
  return rmsNorm(p.norm, projected, x);
}

function recordQkv(probe: Probe, qkv: tf.Tensor4D): void {
  const inner = qkv.shape[3] / 3;
  ["to_q", "to_k", "to_v"].forEach((name, i) => {
    probe.at(name).record("out", () => tf.slice(qkv, [0, 0, 0, i * inner], [-1, -1, -1, inner]));
  });
}

/** Depthwise k×k, then the grouped 1×1 conv (3·heads groups of d channels): [B,H,W,3I]. */
function multiscale(p: MultiscaleBranch, qkv: tf.Tensor4D): tf.Tensor4D {
  return groupedPointwiseOp(depthwise(p.depthwise, qkv), p.pointwise);
}
