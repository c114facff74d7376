/**
 * The linear attention op and its gradient (ops/linear-attention.ts) on webgpu. With a head's
 * state S = [KV | ks] [d, d+1] and a token-head th = (b·N + n)·heads + h (qkv's row th·3d):
 *
 * - forward, 2 dispatches: S of every (b, head), then out = num / (den + ε) per output value;
 * - gradient, 4: S again, w = [dnum | dden] [B·N·heads, d+1] per token-head, D = [dKV | dks]
 *   = Σ_n q̃_n w_nᵀ of every (b, head), then dqkv per value.
 *
 * S and D are the same reduction Σ_n a_n b_nᵀ over a head's tokens (a, b = k̃, [v | 1] or q̃, w):
 * one workgroup per (b, head) stages tiles of tokens in workgroup memory, each invocation keeping
 * a few of the d·(d+1) sums. Each is written twice, row-major and transposed ([G, 2, d·(d+1)]),
 * so the per-value passes, where neighbouring invocations take neighbouring i or j, read it
 * coalesced from the cache; it is too large to stage at d = 64 (16.6 KB). w is the one pass that
 * needs a sum across a head's d outputs (dden = −g·out / e), taken in workgroup memory.
 *
 * The counts do not depend on B. Workgroups stay within WebGPU's defaults (≤ 256 invocations,
 * ≤ 12 KiB of workgroup memory); tfjs folds a flat dispatch past 65535 groups into 2-D, which
 * getGlobalIndex() (main's `index`) undoes. A (b, head) is one workgroup, so few heads with very
 * long sequences leave most of a GPU idle; splitting N would take a merging pass.
 */

import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import {
  EPS,
  LINEAR_ATTENTION,
  LINEAR_ATTENTION_GRAD,
  type LinearAttentionAttrs,
  linearAttentionGradReferenceKernel,
  linearAttentionReferenceKernel,
} from "../../ops/linear-attention.ts";
import { i32, type WorkgroupProgramSpec, workgroupProgram } from "./program.ts";

/** Larger heads take the reference composition (the sums per invocation grow as d²). */
const MAX_HEAD_DIM = 64;
/** Invocations per workgroup of the per-value passes. */
const FLAT_THREADS = 64;
/** Most invocations per workgroup (WebGPU's default limit). */
const MAX_THREADS = 256;
/** Workgroup floats for a reduction's token tile: 12 KiB. */
const TILE_FLOATS = 3072;

/** A call's sizes: d, heads, tokens N = H·W, and B. */
type Sizes = { d: number; heads: number; tokens: number; batch: number };

function sizesOf(qkv: tf.TensorInfo, d: number): Sizes {
  const [batch, h, w, channels] = qkv.shape;
  return { d, heads: channels / (3 * d), tokens: h * w, batch };
}

const tokenHeads = (s: Sizes) => s.batch * s.tokens * s.heads;

/** One of this op's programs: keyed by head size, over a flat result of `size` values. */
function program(
  spec: Omit<WorkgroupProgramSpec, "key" | "outputShape" | "uniforms"> & {
    name: string;
    sizes: Sizes;
    size: number;
  },
): WebGPUProgram {
  const { name, sizes, size, body, ...rest } = spec;
  return workgroupProgram({
    ...rest,
    key: `linear_attention_${name}_${sizes.d}`,
    outputShape: [size],
    uniforms: "heads : i32, tokens : i32, count : i32,",
    body: `${commonWgsl(sizes.d)}${body}`,
  });
}

/**
 * Constants of head size d and the index helpers every pass shares. `count` (a uniform) is the
 * number of work items a pass guards against: a folded dispatch rounds the workgroups up.
 */
function commonWgsl(d: number): string {
  return `
    const D = ${d};
    const PLANE = ${d * (d + 1)};
    const EPS = f32(${EPS});
    // The (b, head) of token-head th = (b·N + n)·heads + h: b·heads + h.
    fn groupOf(th : i32) -> i32 {
      return (th / (uniforms.tokens * uniforms.heads)) * uniforms.heads + th % uniforms.heads;
    }
    // Token n of (b, head) g.
    fn tokenHead(g : i32, n : i32) -> i32 {
      return ((g / uniforms.heads) * uniforms.tokens + n) * uniforms.heads + g % uniforms.heads;
    }`;
}

/** vec2(num_j, den) of token-head th: q̃ · S's column j and its last column. */
function numDenWgsl(): string {
  return `
    fn numDen(th : i32, j : i32) -> vec2<f32> {
      let s = groupOf(th) * 2 * PLANE;
      var sums = vec2<f32>(0.0);
      for (var i = 0; i < D; i++) {
        let q = max(qkv[th * 3 * D + i], 0.0);
        sums += q * vec2<f32>(state[s + i * (D + 1) + j], state[s + i * (D + 1) + D]);
      }
      return sums;
    }`;
}

/**
 * [G, 2, d·(d+1)]: Σ_n a_n b_nᵀ of every (b, head) g, row-major (i·(d+1) + j), then transposed
 * (j·d + i). S: a = k̃, b = [v | 1] (inputs qkv); D: a = q̃, b = w (inputs qkv, w).
 */
function reduceProgram(sizes: Sizes, of: "state" | "dstate"): WebGPUProgram {
  const { d } = sizes;
  const plane = d * (d + 1);
  const threads = Math.min(MAX_THREADS, 32 * Math.ceil(plane / 32));
  // A power of two of tokens, which divides the usual N evenly.
  const tile = 2 ** Math.floor(Math.log2(TILE_FLOATS / (2 * d + 1)));
  // a_i and b_j of token-head th: k̃ and [v | 1], or q̃ and w.
  const operands =
    of === "state"
      ? `fn left(th : i32, i : i32) -> f32 { return max(qkv[th * 3 * D + D + i], 0.0); }
         fn right(th : i32, j : i32) -> f32 {
           if (j == D) { return 1.0; }
           return qkv[th * 3 * D + 2 * D + j];
         }`
      : `fn left(th : i32, i : i32) -> f32 { return max(qkv[th * 3 * D + i], 0.0); }
         fn right(th : i32, j : i32) -> f32 { return w[th * (D + 1) + j]; }`;
  const groups = sizes.batch * sizes.heads;
  return program({
    name: of,
    sizes,
    variableNames: of === "state" ? ["qkv"] : ["qkv", "w"],
    size: groups * 2 * plane,
    groups,
    threads,
    body: `
    const THREADS = ${threads};
    const TILE = ${tile};
    const SUMS = ${Math.ceil(plane / threads)};
    ${operands}
    var<workgroup> lefts : array<f32, ${tile * d}>;
    var<workgroup> rights : array<f32, ${tile * (d + 1)}>;
    fn main(index : i32) {
      let g = index / THREADS;
      let valid = g < uniforms.count;
      let lane = i32(localIndex);
      var sums : array<f32, SUMS>;
      // Barriers stay in uniform control flow: the loop bounds are uniforms and constants.
      for (var start = 0; start < uniforms.tokens; start += TILE) {
        let count = min(TILE, uniforms.tokens - start);
        if (valid) {
          for (var l = lane; l < count * D; l += THREADS) {
            lefts[l] = left(tokenHead(g, start + l / D), l % D);
          }
          for (var l = lane; l < count * (D + 1); l += THREADS) {
            rights[l] = right(tokenHead(g, start + l / (D + 1)), l % (D + 1));
          }
        }
        workgroupBarrier();
        for (var r = 0; r < SUMS; r++) {
          let o = lane + r * THREADS;
          if (o < PLANE) {
            let i = o / (D + 1);
            let j = o % (D + 1);
            // Summed by tile, then across tiles: long sequences lose fewer digits.
            var tileSum = 0.0;
            for (var t = 0; t < count; t++) {
              tileSum += lefts[t * D + i] * rights[t * (D + 1) + j];
            }
            sums[r] += tileSum;
          }
        }
        workgroupBarrier();
      }
      for (var r = 0; r < SUMS; r++) {
        let o = lane + r * THREADS;
        if (valid && o < PLANE) {
          let i = o / (D + 1);
          let j = o % (D + 1);
          result[g * 2 * PLANE + o] = sums[r];
          result[g * 2 * PLANE + PLANE + j * D + i] = sums[r];
        }
      }
    }`,
  });
}

/** out [B·N·heads, d] = num / (den + ε), one invocation per value (inputs qkv, state). */
function outProgram(sizes: Sizes): WebGPUProgram {
  const size = tokenHeads(sizes) * sizes.d;
  return program({
    name: "out",
    sizes,
    variableNames: ["qkv", "state"],
    size,
    groups: Math.ceil(size / FLAT_THREADS),
    threads: FLAT_THREADS,
    body: `${numDenWgsl()}
    fn main(index : i32) {
      if (index < uniforms.count) {
        let nd = numDen(index / D, index % D);
        result[index] = nd.x / (nd.y + EPS);
      }
    }`,
  });
}

/**
 * w [B·N·heads, d+1] = [g / e | −g·out / e], e = den + ε, from inputs qkv, state and dy. A
 * workgroup is whole token-heads, d invocations each, so g·out is summed in workgroup memory.
 */
function wProgram(sizes: Sizes): WebGPUProgram {
  const { d } = sizes;
  const perGroup = Math.floor(MAX_THREADS / d);
  return program({
    name: "w",
    sizes,
    variableNames: ["qkv", "state", "dy"],
    size: tokenHeads(sizes) * (d + 1),
    groups: Math.ceil(tokenHeads(sizes) / perGroup),
    threads: perGroup * d,
    body: `${numDenWgsl()}
    var<workgroup> products : array<f32, ${perGroup * d}>;
    fn main(index : i32) {
      let th = index / D;
      let j = index % D;
      let valid = th < uniforms.count;
      var nd = vec2<f32>(0.0);
      var g = 0.0;
      if (valid) {
        nd = numDen(th, j);
        g = dy[index];
      }
      let e = nd.y + EPS;
      products[localIndex] = g * (nd.x / e);
      workgroupBarrier();
      let first = i32(localIndex) - j;
      var dot = 0.0;
      for (var l = 0; l < D; l++) {
        dot += products[first + l];
      }
      if (valid) {
        result[th * (D + 1) + j] = g / e;
        if (j == 0) {
          result[th * (D + 1) + D] = -dot / e;
        }
      }
    }`,
  });
}

/**
 * dqkv [B·N·heads, 3d], one invocation per value (inputs qkv, state, w, dstate), from the
 * transposed planes where it runs over i: dq̃_i = Σ_j S[i, j] w_j, dk̃_i = Σ_j D[i, j] [v | 1]_j,
 * dv_j = Σ_i D[i, j] k̃_i; ReLU's masks on q and k.
 */
function dqkvProgram(sizes: Sizes): WebGPUProgram {
  const size = tokenHeads(sizes) * 3 * sizes.d;
  return program({
    name: "dqkv",
    sizes,
    variableNames: ["qkv", "state", "w", "dstate"],
    size,
    groups: Math.ceil(size / FLAT_THREADS),
    threads: FLAT_THREADS,
    body: `
    fn main(index : i32) {
      if (index < uniforms.count) {
        let th = index / (3 * D);
        let role = (index / D) % 3;
        let i = index % D;
        let row = th * 3 * D;
        let s = groupOf(th) * 2 * PLANE;
        let transposed = s + PLANE;
        var grad = 0.0;
        if (role == 0 && qkv[index] > 0.0) {
          for (var j = 0; j <= D; j++) {
            grad += state[transposed + j * D + i] * w[th * (D + 1) + j];
          }
        } else if (role == 1 && qkv[index] > 0.0) {
          grad = dstate[transposed + D * D + i];
          for (var j = 0; j < D; j++) {
            grad += dstate[transposed + j * D + i] * qkv[row + 2 * D + j];
          }
        } else if (role == 2) {
          for (var k = 0; k < D; k++) {
            grad += dstate[s + k * (D + 1) + i] * max(qkv[row + D + k], 0.0);
          }
        }
        result[index] = grad;
      }
    }`,
  });
}

type Run = (program: WebGPUProgram, inputs: tf.TensorInfo[], count: number) => tf.TensorInfo;

/** Runs programs of `sizes` on flat views of their inputs (the shaders index rows themselves). */
function runner(backend: unknown, sizes: Sizes): Run {
  const flat = (t: tf.TensorInfo) => ({ ...t, shape: [tf.util.sizeFromShape(t.shape)] });
  // One entry per i32: tfjs aligns an entry of n values as a vecn, not as n scalars.
  const uniforms = (count: number) => [sizes.heads, sizes.tokens, count].map(i32);
  return (program, inputs, count) =>
    (backend as WebGPUBackend).runWebGPUProgram(
      program,
      inputs.map(flat),
      "float32",
      uniforms(count),
    );
}

const headDimOf = (attrs: unknown) => (attrs as LinearAttentionAttrs).headDim;

export const linearAttentionKernel: tf.KernelConfig = {
  kernelName: LINEAR_ATTENTION,
  backendName: "webgpu",
  kernelFunc: (args) => {
    const d = headDimOf(args.attrs);
    if (d > MAX_HEAD_DIM) return linearAttentionReferenceKernel(args);
    const { qkv } = args.inputs as { qkv: tf.TensorInfo };
    const sizes = sizesOf(qkv, d);
    const run = runner(args.backend, sizes);
    const state = run(reduceProgram(sizes, "state"), [qkv], sizes.batch * sizes.heads);
    const out = run(outProgram(sizes), [qkv, state], tokenHeads(sizes) * d);
    // Released once the queued dispatch that reads it has run.
    (args.backend as WebGPUBackend).disposeData(state.dataId);
    return { ...out, shape: [...qkv.shape.slice(0, 3), sizes.heads * d] };
  },
};

export const linearAttentionGradKernel: tf.KernelConfig = {
  kernelName: LINEAR_ATTENTION_GRAD,
  backendName: "webgpu",
  kernelFunc: (args) => {
    const d = headDimOf(args.attrs);
    if (d > MAX_HEAD_DIM) return linearAttentionGradReferenceKernel(args);
    const { dy, qkv } = args.inputs as { dy: tf.TensorInfo; qkv: tf.TensorInfo };
    const sizes = sizesOf(qkv, d);
    const run = runner(args.backend, sizes);
    const state = run(reduceProgram(sizes, "state"), [qkv], sizes.batch * sizes.heads);
    const w = run(wProgram(sizes), [qkv, state, dy], tokenHeads(sizes));
    const dstate = run(reduceProgram(sizes, "dstate"), [qkv, w], sizes.batch * sizes.heads);
    const dqkv = run(dqkvProgram(sizes), [qkv, state, w, dstate], tokenHeads(sizes) * 3 * d);
    for (const t of [state, w, dstate]) (args.backend as WebGPUBackend).disposeData(t.dataId);
    return { ...dqkv, shape: qkv.shape };
  },
};

export const webgpuLinearAttentionKernels = [linearAttentionKernel, linearAttentionGradKernel];
