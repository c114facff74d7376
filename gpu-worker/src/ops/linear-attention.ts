/**
 * The core of Sana's ReLU linear attention (models/nn/attention.ts) as one op, with its gradient
 * as a second one. From qkv [B,H,W,heads·3d], each head's channels (query d, key d, value d)
 * consecutive, per batch b and head h over the N = H·W tokens, with q̃ = relu(q), k̃ = relu(k):
 *
 *   S = Σ_m k̃_m [v_m | 1]ᵀ  [d, d+1]: KV | ks
 *   [num_n | den_n] = q̃_n · S,  out_n = num_n / (den_n + ε)
 *
 * written to [B,H,W,heads·d] at channel d·h + j. As tfjs ops on webgpu the forward is 14
 * dispatches and its autodiff gradient 20 more; the fused kernels take 2 and 4
 * (backends/webgpu/linear-attention.ts). Every backend gets reference kernels made of ops here.
 * attention.ts takes it at every N, also where diffusers takes the quadratic form (N ≤ d).
 */

import * as tf from "@tensorflow/tfjs-core";
import { fromOps, hasFastKernel, registerReferenceKernel } from "../backends/op-kernels.ts";

/** Input qkv [B,H,W,heads·3d]; attr headDim. Output [B,H,W,heads·d]. */
export const LINEAR_ATTENTION = "RevqLinearAttention";
/** Inputs dy [B,H,W,heads·d], qkv [B,H,W,heads·3d]; attr headDim. Output dqkv like qkv. */
export const LINEAR_ATTENTION_GRAD = "RevqLinearAttentionGrad";

export type LinearAttentionAttrs = { headDim: number };

/** The normaliser's epsilon, as in diffusers. */
export const EPS = 1e-15;

/** out [B,H,W,heads·d] of qkv [B,H,W,heads·3d], as one kernel. */
export function linearAttentionOp(qkv: tf.Tensor4D, headDim: number): tf.Tensor4D {
  checkShape(qkv, headDim);
  if (!hasFastKernel(LINEAR_ATTENTION)) return linearAttentionReference(qkv, headDim);
  const attrs: LinearAttentionAttrs = { headDim };
  return tf
    .engine()
    .runKernel(LINEAR_ATTENTION, { qkv }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

function checkShape(qkv: tf.Tensor4D, headDim: number): void {
  if (qkv.dtype !== "float32") throw new Error(`linearAttentionOp: qkv is ${qkv.dtype}`);
  if (qkv.rank !== 4 || !(headDim > 0) || qkv.shape[3] % (3 * headDim) !== 0) {
    throw new Error(`linearAttentionOp: [${qkv.shape}] is no [B,H,W,heads·3·${headDim}]`);
  }
}

/** attention.ts's splitHeads + linearAttention + mergeHeads, in its order of ops. */
export function linearAttentionReference(qkv: tf.Tensor4D, headDim: number): tf.Tensor4D {
  const [b, h, w] = qkv.shape;
  const [q, k, v] = splitHeads(qkv, headDim);
  return mergeHeads(linearAttention(q, k, v), b, h, w);
}

/** [B,H,W,G·3d] → query, key, value of every head: [G·B, N, d], ReLU on q and k. */
function splitHeads(all: tf.Tensor4D, d: number): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] {
  const [q, k, v] = rolesOf(all, d);
  return [tf.relu(q), tf.relu(k), v];
}

/** [B,H,W,G·3d] → the raw query, key, value of every head: [G·B, N, d] (head-major). */
function rolesOf(all: tf.Tensor4D, d: number): tf.Tensor3D[] {
  const [b, h, w, channels] = all.shape;
  const heads = channels / (3 * d);
  const perHead = tf.reshape(all, [b, h * w, heads, 3, d]);
  const roles = tf.reshape(tf.transpose(perHead, [3, 2, 0, 1, 4]), [3, heads * b, h * w, d]);
  return tf.unstack(roles) as tf.Tensor3D[];
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

/** [G·B, N, d] → [B,H,W,G·d], channel = d·head + j. */
function mergeHeads(x: tf.Tensor3D, b: number, h: number, w: number): tf.Tensor4D {
  const [gb, , d] = x.shape;
  const heads = gb / b;
  const byPixel = tf.transpose(tf.reshape(x, [heads, b, h * w, d]), [1, 2, 0, 3]);
  return tf.reshape(byPixel, [b, h, w, heads * d]);
}

/**
 * dqkv [B,H,W,G·3d] written out by hand, per head with S = [KV | ks] as in the forward:
 *
 *   w_n = [dnum_n | dden_n] = [g_n / e_n | −g_n·out_n / e_n],  e_n = den_n + ε
 *   dq̃_n = S · w_n,  D = [dKV | dks] = Σ_n q̃_n w_nᵀ
 *   dk̃_m = D · [v_m | 1],  dv_m = dKVᵀ · k̃_m
 *
 * then the ReLU masks on q and k.
 */
export function linearAttentionGradReference(
  dy: tf.Tensor4D,
  qkv: tf.Tensor4D,
  headDim: number,
): tf.Tensor4D {
  const [b, height, width] = qkv.shape;
  const [q, k, v] = rolesOf(qkv, headDim);
  const [qRelu, kRelu] = [tf.relu(q), tf.relu(k)];
  const [gb, n, d] = v.shape;
  const padded = tf.concat([v, tf.ones([gb, n, 1])], 2); // [GB, N, d+1]
  const state = tf.matMul(kRelu, padded, true, false); // S [GB, d, d+1]
  const [num, den] = tf.split(tf.matMul(qRelu, state), [d, 1], 2);
  const e = tf.add(den, EPS); // [GB, N, 1]
  const g = headsOf(dy, d); // [GB, N, d]
  const dden = tf.neg(tf.div(tf.sum(tf.mul(g, tf.div(num, e)), 2, true), e));
  const w = tf.concat([tf.div(g, e), dden], 2); // [GB, N, d+1]
  const dq = tf.matMul(w, state, false, true); // [GB, N, d]
  const dState = tf.matMul(qRelu, w, true, false); // D [GB, d, d+1]
  const dk = tf.matMul(padded, dState, false, true); // [GB, N, d]
  const dv = tf.matMul(kRelu, tf.slice(dState, [0, 0, 0], [-1, -1, d])); // [GB, N, d]
  // ReLU's gradient as tfjs takes it: dy·step(x), 0 at x = 0.
  const masked = [tf.mul(dq, tf.step(q)), tf.mul(dk, tf.step(k)), dv] as tf.Tensor3D[];
  return mergeRoles(masked, b, height, width);
}

/** [B,H,W,G·d] → [G·B, N, d], mergeHeads undone. */
function headsOf(x: tf.Tensor4D, d: number): tf.Tensor3D {
  const [b, h, w, channels] = x.shape;
  const heads = channels / d;
  const byHead = tf.transpose(tf.reshape(x, [b, h * w, heads, d]), [2, 0, 1, 3]);
  return tf.reshape(byHead, [heads * b, h * w, d]);
}

/** [3, G·B, N, d] (q, k, v) → [B,H,W,G·3d]: splitHeads's roles put back. */
function mergeRoles(roles: tf.Tensor3D[], b: number, h: number, w: number): tf.Tensor4D {
  const [gb, , d] = roles[0].shape;
  const heads = gb / b;
  const stacked = tf.reshape(tf.stack(roles), [3, heads, b, h * w, d]);
  return tf.reshape(tf.transpose(stacked, [2, 3, 1, 0, 4]), [b, h, w, heads * 3 * d]);
}

const headDimOf = (attrs: unknown) => (attrs as LinearAttentionAttrs).headDim;

/** The reference kernels, for backends without fused ones (and for large heads on webgpu). */
export const linearAttentionReferenceKernel = fromOps((i, attrs) =>
  linearAttentionReference(i.qkv as tf.Tensor4D, headDimOf(attrs)),
);
export const linearAttentionGradReferenceKernel = fromOps((i, attrs) =>
  linearAttentionGradReference(i.dy as tf.Tensor4D, i.qkv as tf.Tensor4D, headDimOf(attrs)),
);

registerReferenceKernel(LINEAR_ATTENTION, linearAttentionReferenceKernel);
registerReferenceKernel(LINEAR_ATTENTION_GRAD, linearAttentionGradReferenceKernel);

tf.registerGradient({
  kernelName: LINEAR_ATTENTION,
  inputsToSave: ["qkv"],
  gradFunc: (dy, [qkv], attrs) => ({
    qkv: () =>
      tf.engine().runKernel<tf.Tensor>(LINEAR_ATTENTION_GRAD, { dy: dy as tf.Tensor, qkv }, attrs),
  }),
});
