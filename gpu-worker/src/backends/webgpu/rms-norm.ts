/**
 * The RMSNorm op and its gradient (ops/rms-norm.ts) on webgpu, over x seen as rows [R, C]:
 *
 * - forward: one dispatch, one workgroup per row (Σ x² by a workgroup tree, then y, to which
 *   the residual is added when there is one);
 * - gradient: four dispatches whatever R is. dx row by row like the forward; dweight and dbias
 *   as column sums over rows, first per block of 32 rows into partials [2, P, C] (P = ⌈R/32⌉),
 *   then one finishing pass over P for each. A program writes a single output, so dx, the
 *   partials and the two sums cannot share a dispatch.
 *
 * Workgroups have at most 256 invocations and 2 KiB of workgroup memory, within WebGPU's defaults.
 * A dispatch of more than 65535 groups is folded into two dimensions by the backend, which
 * getGlobalIndex() undoes, so the group index is `index / workgroup size` everywhere.
 */

import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import { RMS_NORM, RMS_NORM_GRAD, type RmsNormAttrs } from "../../ops/rms-norm.ts";
import { f32, i32, type Uniform, type WorkgroupProgramSpec, workgroupProgram } from "./program.ts";

/** Rows of the partial sums pass per workgroup, and invocations per row for its Σ x². */
const BLOCK_ROWS = 32;
const LANES = 8;
const BLOCK_THREADS = BLOCK_ROWS * LANES;
/** Invocations per column of the finishing pass. */
const FINISH_THREADS = 64;

/** Invocations per row: C rounded up to a power of two (the tree needs one), in [32, 256]. */
function rowThreads(channels: number): number {
  return Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(channels))));
}

/** One of this op's programs: its key names it and its workgroup size. */
function program(spec: Omit<WorkgroupProgramSpec, "key"> & { name: string }): WebGPUProgram {
  const { name, ...rest } = spec;
  return workgroupProgram({ ...rest, key: `rms_norm_${name}_${spec.threads}` });
}

/**
 * workgroupSum(v): the sum of v over the workgroup's `threads` invocations (a power of two),
 * given to all of them. Call once per invocation, from uniform control flow (it has barriers).
 */
function workgroupSumWgsl(type: string, threads: number): string {
  return `
    var<workgroup> partialSums : array<${type}, ${threads}>;
    fn workgroupSum(v : ${type}) -> ${type} {
      partialSums[localIndex] = v;
      workgroupBarrier();
      for (var half = ${threads / 2}u; half > 0u; half = half / 2u) {
        if (localIndex < half) {
          partialSums[localIndex] = partialSums[localIndex] + partialSums[localIndex + half];
        }
        workgroupBarrier();
      }
      return partialSums[0];
    }`;
}

/** y [R, C] = x·r·weight + bias (+ residual), one workgroup per row of x [R, C]. */
function forwardProgram(rows: number, channels: number, residual: boolean): WebGPUProgram {
  const threads = rowThreads(channels);
  return program({
    name: residual ? "forward_residual" : "forward",
    variableNames: residual ? ["x", "weight", "bias", "residual"] : ["x", "weight", "bias"],
    outputShape: [rows, channels],
    groups: rows,
    threads,
    uniforms: "eps : f32,",
    body: `${workgroupSumWgsl("f32", threads)}
    fn main(index : i32) {
      let row = index / ${threads};
      let rows = uniforms.xShape.x;
      let channels = uniforms.xShape.y;
      var squares = 0.0;
      if (row < rows) {
        for (var c = i32(localIndex); c < channels; c = c + ${threads}) {
          let v = x[row * channels + c];
          squares = squares + v * v;
        }
      }
      let r = inverseSqrt(workgroupSum(squares) / f32(channels) + uniforms.eps);
      if (row < rows) {
        for (var c = i32(localIndex); c < channels; c = c + ${threads}) {
          let i = row * channels + c;
          result[i] = x[i] * r * weight[c] + bias[c]${residual ? " + residual[i]" : ""};
        }
      }
    }`,
  });
}

/**
 * dx [R, C] = r·(g − x̂·mean_c(g·x̂)) = r·g − x·r³·Σ_c(g·x)/C with g = dy·weight: both row sums
 * in one tree, one workgroup per row.
 */
function dxProgram(rows: number, channels: number): WebGPUProgram {
  const threads = rowThreads(channels);
  return program({
    name: "dx",
    variableNames: ["dy", "x", "weight"],
    outputShape: [rows, channels],
    groups: rows,
    threads,
    uniforms: "eps : f32,",
    body: `${workgroupSumWgsl("vec2<f32>", threads)}
    fn main(index : i32) {
      let row = index / ${threads};
      let rows = uniforms.xShape.x;
      let channels = uniforms.xShape.y;
      var sums = vec2<f32>(0.0);
      if (row < rows) {
        for (var c = i32(localIndex); c < channels; c = c + ${threads}) {
          let i = row * channels + c;
          let v = x[i];
          sums = sums + vec2<f32>(v * v, dy[i] * weight[c] * v);
        }
      }
      let total = workgroupSum(sums);
      let r = inverseSqrt(total.x / f32(channels) + uniforms.eps);
      let k = r * r * total.y / f32(channels);
      if (row < rows) {
        for (var c = i32(localIndex); c < channels; c = c + ${threads}) {
          let i = row * channels + c;
          result[i] = r * (dy[i] * weight[c] - x[i] * k);
        }
      }
    }`,
  });
}

/**
 * partials [2, P, C]: [0, p, c] = Σ dy·x̂ and [1, p, c] = Σ dy over rows 32p … 32p + 31. Each
 * workgroup first finds r of its rows (LANES invocations per row), then one invocation per
 * column runs down the block, reading rows coalesced.
 */
function partialsProgram(rows: number, channels: number): WebGPUProgram {
  const blocks = Math.ceil(rows / BLOCK_ROWS);
  return program({
    name: "partials",
    variableNames: ["dy", "x"],
    outputShape: [2, blocks, channels],
    groups: blocks,
    threads: BLOCK_THREADS,
    uniforms: "eps : f32,",
    body: `var<workgroup> laneSums : array<f32, ${BLOCK_THREADS}>;
    var<workgroup> rowScale : array<f32, ${BLOCK_ROWS}>;
    fn main(index : i32) {
      let block = index / ${BLOCK_THREADS};
      let blocks = uniforms.outShape.y;
      let rows = uniforms.xShape.x;
      let channels = uniforms.xShape.y;
      let first = block * ${BLOCK_ROWS};
      let lane = i32(localIndex) % ${LANES};
      let j = i32(localIndex) / ${LANES};
      var squares = 0.0;
      if (first + j < rows) {
        for (var c = lane; c < channels; c = c + ${LANES}) {
          let v = x[(first + j) * channels + c];
          squares = squares + v * v;
        }
      }
      laneSums[localIndex] = squares;
      workgroupBarrier();
      if (lane == 0) {
        var total = 0.0;
        for (var k = 0; k < ${LANES}; k = k + 1) {
          total = total + laneSums[i32(localIndex) + k];
        }
        rowScale[j] = inverseSqrt(total / f32(channels) + uniforms.eps);
      }
      workgroupBarrier();
      if (block < blocks) {
        let count = min(${BLOCK_ROWS}, rows - first);
        for (var c = i32(localIndex); c < channels; c = c + ${BLOCK_THREADS}) {
          var dw = 0.0;
          var db = 0.0;
          for (var k = 0; k < count; k = k + 1) {
            let i = (first + k) * channels + c;
            dw = dw + dy[i] * x[i] * rowScale[k];
            db = db + dy[i];
          }
          result[block * channels + c] = dw;
          result[(blocks + block) * channels + c] = db;
        }
      }
    }`,
  });
}

/** [C] = Σ_p partials[plane, p, c], one workgroup per column. */
function finishProgram(channels: number): WebGPUProgram {
  return program({
    name: "finish",
    variableNames: ["partials"],
    outputShape: [channels],
    groups: channels,
    threads: FINISH_THREADS,
    uniforms: "plane : i32,",
    body: `${workgroupSumWgsl("f32", FINISH_THREADS)}
    fn main(index : i32) {
      let column = index / ${FINISH_THREADS};
      let blocks = uniforms.partialsShape.y;
      let channels = uniforms.partialsShape.z;
      var total = 0.0;
      if (column < channels) {
        for (var p = i32(localIndex); p < blocks; p = p + ${FINISH_THREADS}) {
          total = total + partials[(uniforms.plane * blocks + p) * channels + column];
        }
      }
      let sum = workgroupSum(total);
      if (localIndex == 0u && column < channels) {
        result[column] = sum;
      }
    }`,
  });
}

/** t seen as rows [R, C] of its last axis (a view: same data). */
function asRows(t: tf.TensorInfo): tf.TensorInfo {
  const channels = t.shape[t.shape.length - 1];
  return { ...t, shape: [tf.util.sizeFromShape(t.shape) / channels, channels] };
}

const epsUniform = (attrs: unknown): Uniform[] => [f32((attrs as RmsNormAttrs).eps)];

export const rmsNormKernel: tf.KernelConfig = {
  kernelName: RMS_NORM,
  backendName: "webgpu",
  kernelFunc: ({ inputs, attrs, backend }) => {
    const gpu = backend as WebGPUBackend;
    const { x, weight, bias, residual } = inputs as Record<
      "x" | "weight" | "bias",
      tf.TensorInfo
    > & {
      residual?: tf.TensorInfo;
    };
    const rows = asRows(x);
    const [r, c] = rows.shape;
    const y = gpu.runWebGPUProgram(
      forwardProgram(r, c, residual !== undefined),
      residual ? [rows, weight, bias, asRows(residual)] : [rows, weight, bias],
      "float32",
      epsUniform(attrs),
    );
    return { ...y, shape: x.shape };
  },
};

export const rmsNormGradKernel: tf.KernelConfig = {
  kernelName: RMS_NORM_GRAD,
  backendName: "webgpu",
  kernelFunc: ({ inputs, attrs, backend }) => {
    const gpu = backend as WebGPUBackend;
    const { dy, x, weight } = inputs as Record<string, tf.TensorInfo>;
    const [dyRows, xRows] = [asRows(dy), asRows(x)];
    const [r, c] = xRows.shape;
    const eps = epsUniform(attrs);
    const dx = gpu.runWebGPUProgram(dxProgram(r, c), [dyRows, xRows, weight], "float32", eps);
    const partials = gpu.runWebGPUProgram(partialsProgram(r, c), [dyRows, xRows], "float32", eps);
    const finish = (plane: number) =>
      gpu.runWebGPUProgram(finishProgram(c), [partials], "float32", [i32(plane)]);
    const [dweight, dbias] = [finish(0), finish(1)];
    // Released once the queued dispatches that read it have run.
    gpu.disposeData(partials.dataId);
    return [{ ...dx, shape: x.shape }, dweight, dbias];
  },
};
