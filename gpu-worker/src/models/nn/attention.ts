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

/** Linear attention's normaliser is divided by this plus a small epsilon, as in diffusers. */
const EPS = 1e-15;

/** x + norm(to_out(attention(x))): [B,H,W,C] → [B,H,W,C]. */
export function multiscaleAttention(p: Attention, x: tf.Tensor4D, probe: Probe): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const d = p.headDim;
  const qkv = linear(p.qkv, x); // [B,H,W,3I]
  recordQkv(probe, qkv);
  const branches = [qkv, ...p.branches.map((branch) => multiscale(branch, qkv, d))];
  branches.slice(1).forEach((t, i) => {
    probe.at(`to_qkv_multiscale.${i}`).record("out", () => t);
  });
  const [q, k, v] = splitHeads(branches, d); // each [G·B, N, d]
  // diffusers' threshold: the quadratic form when there are no more tokens than head channels.
  const attended = h * w > d ? linearAttention(q, k, v) : quadraticAttention(q, k, v);
  const merged = mergeHeads(attended, b, h, w); // [B,H,W,G·d]
  probe.at("to_out").record("in", () => merged);
  const projected = linear(p.out, merged);
  probe.at("to_out").record("out", () => projected);
  const normed = rmsNorm(p.norm, projected);
  probe.at("norm_out").record("out", () => normed);
  return tf.add(normed, x);
}

function recordQkv(probe: Probe, qkv: tf.Tensor4D): void {
  const inner = qkv.shape[3] / 3;
  ["to_q", "to_k", "to_v"].forEach((name, i) => {
    probe.at(name).record("out", () => tf.slice(qkv, [0, 0, 0, i * inner], [-1, -1, -1, inner]));
  });
}

/** Depthwise k×k, then the grouped 1×1 conv as a batched matmul over groups: [B,H,W,3I]. */
function multiscale(p: MultiscaleBranch, qkv: tf.Tensor4D, d: number): tf.Tensor4D {
  const [b, h, w, c3] = qkv.shape;
  const groups = c3 / d;
  const spatial = depthwise(p.depthwise, qkv);
  const grouped = tf.transpose(tf.reshape(spatial, [b * h * w, groups, d]), [1, 0, 2]); // [G, BN, d]
  const mixed = tf.matMul(grouped, p.pointwise); // [G, BN, d]
  return tf.reshape(tf.transpose(mixed, [1, 0, 2]), [b, h, w, c3]);
}

/** Branches [B,H,W,3I] each → query, key, value of every head: [G·B, N, d], ReLU on q and k. */
function splitHeads(branches: tf.Tensor4D[], d: number): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] {
  // Concatenated along channels, as diffusers does: wasm splits the gradient of a channel
  // concatenation quickly, but that of a middle axis of a rank-5 tensor very slowly.
  const all = branches.length === 1 ? branches[0] : tf.concat(branches, 3); // [B,H,W,G·3d]
  const [b, h, w, channels] = all.shape;
  const heads = channels / (3 * d);
  const perHead = tf.reshape(all, [b, h * w, heads, 3, d]);
  const roles = tf.reshape(tf.transpose(perHead, [3, 2, 0, 1, 4]), [3, heads * b, h * w, d]);
  const [q, k, v] = tf.unstack(roles) as tf.Tensor3D[];
  return [tf.relu(q), tf.relu(k), v];
}

/** (q · (kᵀ · [v | 1])): numerator and normaliser in one product, [G·B, N, d]. */
function linearAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor3D {
  const [gb, n, d] = v.shape;
  const padded = tf.concat([v, tf.ones([gb, n, 1])], 2); // [GB, N, d+1]
  const kv = tf.matMul(k, padded, true, false); // [GB, d, d+1]
  const out = tf.matMul(q, kv); // [GB, N, d+1]
  const [numerator, normaliser] = tf.split(out, [d, 1], 2);
  return tf.div(numerator, tf.add(normaliser, EPS));
}

/** softmax-free attention: scores q·kᵀ normalised over keys, [G·B, N, d]. */
function quadraticAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor3D {
  const scores = tf.matMul(q, k, false, true); // [GB, Nq, Nk]
  const weights = tf.div(scores, tf.add(tf.sum(scores, 2, true), EPS));
  return tf.matMul(weights, v);
}

/** [G·B, N, d] → [B,H,W,G·d], channel = d·head + j. */
function mergeHeads(x: tf.Tensor3D, b: number, h: number, w: number): tf.Tensor4D {
  const [gb, , d] = x.shape;
  const heads = gb / b;
  const byPixel = tf.transpose(tf.reshape(x, [heads, b, h * w, d]), [1, 2, 0, 3]);
  return tf.reshape(byPixel, [b, h, w, heads * d]);
}
