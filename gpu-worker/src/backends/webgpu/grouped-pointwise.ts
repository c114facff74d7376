/**
 * The grouped 1×1 convolution (ops/grouped-pointwise.ts) on webgpu, over x seen as rows
 * [R, G·d_in], without a transpose:
 *
 * - forward: one dispatch. A workgroup takes 64 rows of one group and computes their
 *   [64, d_out] block, staging x's [64, 16] and the weight's [16, d_out] slices of the
 *   reduction in workgroup memory; each invocation keeps a few rows × columns in registers.
 * - gradient: three dispatches whatever R is. dx is the forward's program with the weight read
 *   transposed (dx_g = dy_g · w_gᵀ). dweight_g = Σ_rows x_gᵀ · dy_g is a sum over all R rows:
 *   first per block of rows into partials [P, G·d_in·d_out] (at most 64 blocks, so their size
 *   does not grow with the batch), then one finishing pass over P.
 *
 * Workgroups have 256 invocations and at most 8.25 KiB of workgroup memory, within WebGPU's
 * defaults, for d_in, d_out ≤ 64; wider groups fall back to the reference kernels. The
 * backend folds a dispatch of more than 65535 workgroups into two dimensions; the shaders
 * read their workgroup from all three and skip the surplus the fold rounds up to.
 */

import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import {
  GROUPED_POINTWISE,
  GROUPED_POINTWISE_GRAD,
  groupedPointwiseGradReferenceKernel,
  groupedPointwiseReferenceKernel,
} from "../../ops/grouped-pointwise.ts";
import { i32, type WorkgroupProgramSpec, workgroupProgram } from "./program.ts";

const THREADS = 256;
/** Widest d_in or d_out the programs take: it bounds their registers and workgroup memory. */
const MAX_WIDTH = 64;
/** Rows per workgroup of the matmul, and reduction slice staged at a time. */
const TILE_ROWS = 64;
const TILE_K = 16;
/** Floats of x and dy the partials pass stages per slice of rows (8 KiB). */
const STAGE_FLOATS = 2048;
/** Row blocks of the partials pass at most: G·64 workgroups (3072 for the rectifier's 48). */
const MAX_BLOCKS = 64;

/** One of this op's programs, of THREADS invocations a workgroup. */
function program(spec: Omit<WorkgroupProgramSpec, "threads">): WebGPUProgram {
  return workgroupProgram({ ...spec, key: `grouped_pointwise_${spec.key}`, threads: THREADS });
}

/** The flat index of this invocation's workgroup, however the dispatch was folded. */
const WORKGROUP_WGSL = `i32(workgroupId.x +
    numWorkgroups.x * (workgroupId.y + numWorkgroups.y * workgroupId.z))`;

/**
 * How 256 invocations cover `width` output columns: `lanes` of them per row of columns (a power
 * of two in [4, 16]), each taking columns lane, lane + lanes, …: `perLane` of them.
 */
function columnLanes(width: number): { lanes: number; perLane: number } {
  const lanes = Math.min(16, Math.max(4, 2 ** Math.ceil(Math.log2(width))));
  return { lanes, perLane: Math.ceil(width / lanes) };
}

/**
 * out [R, G·N] = a_g [R, K] · b_g [K, N] for each group g, with a [R, G·K] and w either
 * [G, K, N] (forward: a = x) or [G, N, K], read transposed (dx: a = dy).
 */
function matmulProgram(rows: number, groups: number, k: number, n: number, transposed: boolean) {
  const sliceK = Math.min(TILE_K, k);
  const { lanes, perLane } = columnLanes(n);
  const padded = lanes * perLane; // columns of the staged weight slice, zeros past n
  const rowLanes = THREADS / lanes;
  const perRow = TILE_ROWS / rowLanes; // rows per invocation
  const aStride = sliceK + 1; // one float of padding spreads a column over memory banks
  // Consecutive invocations read consecutive weights: along N, or along K when transposed.
  const [kOf, nOf, weightAt] = transposed
    ? ["e % SLICE", "e / SLICE", "(g * N + col) * K + kg"]
    : ["e / PADDED", "e % PADDED", "(g * K + kg) * N + col"];
  const body = `
    const K = ${k};
    const N = ${n};
    const SLICE = ${sliceK};
    const PADDED = ${padded};
    var<workgroup> aTile : array<f32, ${TILE_ROWS * aStride}>;
    var<workgroup> bTile : array<f32, ${sliceK * padded}>;
    fn main(index : i32) {
      let groups = uniforms.wShape.x;
      let rows = uniforms.aShape.x;
      let workgroup = ${WORKGROUP_WGSL};
      let g = workgroup % groups;
      // Past the last tile (a folded dispatch) first ≥ rows: nothing is loaded or stored.
      let first = (workgroup / groups) * ${TILE_ROWS};
      let lane = i32(localIndex);
      let column = lane % ${lanes};
      let rowLane = lane / ${lanes};
      var acc : array<f32, ${perRow * perLane}>;
      var av : array<f32, ${perRow}>;
      var bv : array<f32, ${perLane}>;
      // Barriers stay in uniform control flow: this loop's bounds are constants.
      for (var k0 = 0; k0 < K; k0 += SLICE) {
        for (var e = lane; e < ${TILE_ROWS} * SLICE; e += ${THREADS}) {
          let row = first + e / SLICE;
          let kg = k0 + e % SLICE;
          var v = 0.0;
          if (row < rows && kg < K) { v = a[row * groups * K + g * K + kg]; }
          aTile[(e / SLICE) * ${aStride} + e % SLICE] = v;
        }
        for (var e = lane; e < SLICE * PADDED; e += ${THREADS}) {
          let kl = ${kOf};
          let kg = k0 + kl;
          let col = ${nOf};
          var v = 0.0;
          if (kg < K && col < N) { v = w[${weightAt}]; }
          bTile[kl * PADDED + col] = v;
        }
        workgroupBarrier();
        for (var kk = 0; kk < SLICE; kk++) {
          for (var i = 0; i < ${perRow}; i++) {
            av[i] = aTile[(rowLane + i * ${rowLanes}) * ${aStride} + kk];
          }
          for (var j = 0; j < ${perLane}; j++) { bv[j] = bTile[kk * PADDED + column + j * ${lanes}]; }
          for (var i = 0; i < ${perRow}; i++) {
            for (var j = 0; j < ${perLane}; j++) {
              acc[i * ${perLane} + j] = fma(av[i], bv[j], acc[i * ${perLane} + j]);
            }
          }
        }
        workgroupBarrier();
      }
      for (var i = 0; i < ${perRow}; i++) {
        let row = first + rowLane + i * ${rowLanes};
        for (var j = 0; j < ${perLane}; j++) {
          let col = column + j * ${lanes};
          if (row < rows && col < N) {
            result[row * groups * N + g * N + col] = acc[i * ${perLane} + j];
          }
        }
      }
    }`;
  return program({
    key: `matmul_${k}_${n}_${transposed}`,
    variableNames: ["a", "w"],
    outputShape: [rows, groups * n],
    groups: groups * Math.ceil(rows / TILE_ROWS),
    body,
  });
}

/** How the partials pass splits R rows: P blocks of `chunks` slices of `sliceRows` rows. */
function rowBlocks(rows: number, sliceRows: number): { blocks: number; chunks: number } {
  const slices = Math.max(1, Math.ceil(rows / sliceRows)); // no rows: one block of zeros
  const chunks = Math.ceil(slices / Math.min(slices, MAX_BLOCKS));
  return { blocks: Math.ceil(slices / chunks), chunks };
}

/**
 * partials [P, G·d_in·d_out]: [p, (g·d_in + i)·d_out + o] = Σ x[r, g·d_in + i]·dy[r, g·d_out + o]
 * over the rows r of block p, one workgroup per (block, group). Slices of rows of x_g and dy_g
 * pass through workgroup memory; each invocation keeps a few (i, o) sums in registers.
 */
function partialsProgram(rows: number, groups: number, dIn: number, dOut: number) {
  const { lanes, perLane } = columnLanes(dOut);
  const inLanes = THREADS / lanes;
  const perIn = Math.ceil(dIn / inLanes);
  // Staged widths, zeros past d_in and d_out, so that every lane reads inside the tiles.
  const [inPadded, outPadded] = [inLanes * perIn, lanes * perLane];
  const sliceRows = Math.min(64, Math.floor(STAGE_FLOATS / (inPadded + outPadded)));
  const { blocks, chunks } = rowBlocks(rows, sliceRows);
  const stage = (name: string, tile: string, width: number, padded: number) => `
        for (var e = lane; e < ${sliceRows * padded}; e += ${THREADS}) {
          let row = start + e / ${padded};
          let col = e % ${padded};
          var v = 0.0;
          if (row < rows && col < ${width}) { v = ${name}[row * groups * ${width} + g * ${width} + col]; }
          ${tile}[e] = v;
        }`;
  const body = `
    var<workgroup> xTile : array<f32, ${sliceRows * inPadded}>;
    var<workgroup> dyTile : array<f32, ${sliceRows * outPadded}>;
    fn main(index : i32) {
      let rows = uniforms.xShape.x;
      let groups = uniforms.xShape.y / ${dIn};
      let blocks = uniforms.outShape.x;
      let workgroup = ${WORKGROUP_WGSL};
      let g = workgroup % groups;
      let block = workgroup / groups;
      let lane = i32(localIndex);
      let o0 = lane % ${lanes};
      let i0 = lane / ${lanes};
      var acc : array<f32, ${perIn * perLane}>;
      var xv : array<f32, ${perIn}>;
      var dyv : array<f32, ${perLane}>;
      // Barriers stay in uniform control flow: this loop's bounds come from uniforms only.
      for (var chunk = 0; chunk < uniforms.chunks; chunk++) {
        let start = (block * uniforms.chunks + chunk) * ${sliceRows};
        ${stage("x", "xTile", dIn, inPadded)}
        ${stage("dy", "dyTile", dOut, outPadded)}
        workgroupBarrier();
        for (var r = 0; r < ${sliceRows}; r++) {
          for (var i = 0; i < ${perIn}; i++) { xv[i] = xTile[r * ${inPadded} + i0 + i * ${inLanes}]; }
          for (var j = 0; j < ${perLane}; j++) {
            dyv[j] = dyTile[r * ${outPadded} + o0 + j * ${lanes}];
          }
          for (var i = 0; i < ${perIn}; i++) {
            for (var j = 0; j < ${perLane}; j++) {
              acc[i * ${perLane} + j] = fma(xv[i], dyv[j], acc[i * ${perLane} + j]);
            }
          }
        }
        workgroupBarrier();
      }
      for (var i = 0; i < ${perIn}; i++) {
        let ii = i0 + i * ${inLanes};
        for (var j = 0; j < ${perLane}; j++) {
          let oo = o0 + j * ${lanes};
          if (block < blocks && ii < ${dIn} && oo < ${dOut}) {
            result[(block * groups + g) * ${dIn * dOut} + ii * ${dOut} + oo] = acc[i * ${perLane} + j];
          }
        }
      }
    }`;
  return {
    program: program({
      key: `partials_${dIn}_${dOut}`,
      variableNames: ["x", "dy"],
      outputShape: [blocks, groups * dIn * dOut],
      groups: blocks * groups,
      uniforms: "chunks : i32,",
      body,
    }),
    uniforms: [i32(chunks)],
  };
}

/** [E] = Σ_p partials[p, e], one invocation per element: reads along e are coalesced. */
function finishProgram(elements: number): WebGPUProgram {
  return program({
    key: "finish",
    variableNames: ["partials"],
    outputShape: [elements],
    groups: Math.ceil(elements / THREADS),
    body: `
    fn main(index : i32) {
      let blocks = uniforms.partialsShape.x;
      let elements = uniforms.partialsShape.y;
      if (index < elements) {
        var total = 0.0;
        for (var p = 0; p < blocks; p++) { total += partials[p * elements + index]; }
        result[index] = total;
      }
    }`,
  });
}

/** t seen as rows [R, C] of its last axis (a view: same data). */
function asRows(t: tf.TensorInfo): tf.TensorInfo {
  const channels = t.shape[t.shape.length - 1];
  return { ...t, shape: [tf.util.sizeFromShape(t.shape) / channels, channels] };
}

const fits = (weight: tf.TensorInfo) => Math.max(weight.shape[1], weight.shape[2]) <= MAX_WIDTH;

export const groupedPointwiseKernel: tf.KernelConfig = {
  kernelName: GROUPED_POINTWISE,
  backendName: "webgpu",
  kernelFunc: (args) => {
    const { x, weight } = args.inputs as Record<string, tf.TensorInfo>;
    if (!fits(weight)) return groupedPointwiseReferenceKernel(args);
    const gpu = args.backend as WebGPUBackend;
    const [groups, dIn, dOut] = weight.shape;
    const rows = asRows(x);
    const matmul = matmulProgram(rows.shape[0], groups, dIn, dOut, false);
    const out = gpu.runWebGPUProgram(matmul, [rows, weight], "float32");
    return { ...out, shape: [...x.shape.slice(0, -1), groups * dOut] };
  },
};

export const groupedPointwiseGradKernel: tf.KernelConfig = {
  kernelName: GROUPED_POINTWISE_GRAD,
  backendName: "webgpu",
  kernelFunc: (args) => {
    const { dy, x, weight } = args.inputs as Record<string, tf.TensorInfo>;
    if (!fits(weight)) return groupedPointwiseGradReferenceKernel(args);
    const gpu = args.backend as WebGPUBackend;
    const [groups, dIn, dOut] = weight.shape;
    const [dyRows, xRows] = [asRows(dy), asRows(x)];
    const rows = xRows.shape[0];
    const dxProgram = matmulProgram(rows, groups, dOut, dIn, true);
    const dx = gpu.runWebGPUProgram(dxProgram, [dyRows, weight], "float32");
    const partials = partialsProgram(rows, groups, dIn, dOut);
    const sums = gpu.runWebGPUProgram(
      partials.program,
      [xRows, dyRows],
      "float32",
      partials.uniforms,
    );
    const dweight = gpu.runWebGPUProgram(finishProgram(groups * dIn * dOut), [sums], "float32");
    // Released once the queued dispatches that read it have run.
    gpu.disposeData(sums.dataId);
    return [
      { ...dx, shape: x.shape },
      { ...dweight, shape: weight.shape },
    ];
  },
};
