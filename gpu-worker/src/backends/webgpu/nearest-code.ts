/**
 * NEAREST_CODE on webgpu in one dispatch, whatever the batch: no score matrix, no argMin.
 *
 * A workgroup takes one group g and a tile of T of its tokens; its 256 invocations are T tokens ×
 * S = 256 / T lanes. The group's K codes pass through workgroup memory a tile at a time; lane s of
 * a token scans codes s, s + S, … of each tile, keeping its best squared distance and code, and the
 * S lanes of each token then merge. T follows the tokens per group M (the smallest power of two
 * ≥ M, at most 256): a large batch fills the workgroup with tokens, so every staged code serves
 * 256 of them; a batch of one spreads a group's K codes over 256 lanes instead of one thread.
 *
 * Ties go to the lowest code: each lane scans its codes in increasing order keeping the first
 * minimum (strict <), and the merge compares (distance, code) pairs. Identical codes give
 * bit-identical distances, so duplicates always resolve to the first.
 *
 * WebGPU's default limits hold: 256 invocations, 10 KiB of workgroup memory (16 KiB allowed), and
 * G·⌈M/T⌉ workgroups in a flat dispatch that tfjs folds into 2-D past 65 535 (the shader reads its
 * workgroup from all three dimensions). Parallelism is G·⌈M/T⌉ workgroups, so a codebook of very
 * few groups (one group of 262 144 codes) keeps only a few busy; splitting K across workgroups
 * would take a second, merging dispatch.
 */

import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import type * as tf from "@tensorflow/tfjs-core";
import { NEAREST_CODE, nearestCodeReferenceKernel } from "../../ops/nearest-code.ts";
import { i32 } from "./program.ts";

const WORKGROUP = 256;

/** Codebook values staged per tile: 8 KiB of float32, 512 codes of 4 or 256 of 8. */
const TILE_FLOATS = 2048;

/** How one program instance splits the work; all but M and the tile count are baked in. */
type Layout = {
  dim: number;
  /** Components per vector load (4, 2 or 1: the largest dividing D). */
  width: number;
  /** Tokens per workgroup (T) and lanes per token (S), T·S = 256. */
  tokens: number;
  lanes: number;
  /** Codes per staged tile. */
  tileCodes: number;
  /** Tokens per group (M) and workgroups per group (⌈M/T⌉): uniforms, so shaders are shared. */
  perGroup: number;
  tiles: number;
};

function layoutFor(dim: number, perGroup: number): Layout {
  const width = dim % 4 === 0 ? 4 : dim % 2 === 0 ? 2 : 1;
  const tokens = Math.min(WORKGROUP, 2 ** Math.ceil(Math.log2(Math.max(1, perGroup))));
  return {
    dim,
    width,
    tokens,
    lanes: WORKGROUP / tokens,
    tileCodes: Math.floor(TILE_FLOATS / dim),
    perGroup,
    tiles: Math.ceil(perGroup / tokens),
  };
}

class NearestCodeProgram implements WebGPUProgram {
  readonly variableNames = ["codebook", "tokens"];
  readonly variableComponents: number[];
  readonly outputShape: number[];
  // runWebGPUProgram rewrites these two: the key with input ranks, the dispatch folded to 2-D.
  shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly uniforms = "perGroup : i32, tiles : i32,";

  private readonly layout: Layout;

  constructor(layout: Layout, groups: number) {
    this.layout = layout;
    this.variableComponents = [layout.width, layout.width];
    this.outputShape = [groups * layout.perGroup];
    this.shaderKey = `revqNearestCode_${layout.dim}_${layout.tokens}`;
    this.dispatch = [groups * layout.tiles, 1, 1];
  }

  getUserCode(): string {
    return shader(this.layout);
  }
}

/** The WGSL of `main`; tfjs adds the bindings (`codebook`, `tokens`, `result`) and `uniforms`. */
function shader({ dim, width, tokens, lanes, tileCodes }: Layout): string {
  const vector = width === 1 ? "f32" : `vec${width}<f32>`;
  const vectors = dim / width; // per code or token
  const square = width === 1 ? "diff * diff" : "dot(diff, diff)";
  return `
    var<workgroup> tile : array<${vector}, ${tileCodes * vectors}>;
    var<workgroup> laneDistances : array<f32, ${WORKGROUP}>;
    var<workgroup> laneCodes : array<i32, ${WORKGROUP}>;

    // index: the flat invocation tfjs passes; the workgroup is the unit here.
    fn main(index : i32) {
      let groups = uniforms.codebookShape.x;
      let codes = uniforms.codebookShape.y;
      let workgroup = i32(workgroupId.x +
          numWorkgroups.x * (workgroupId.y + numWorkgroups.y * workgroupId.z));
      let group = workgroup / uniforms.tiles;
      let lane = i32(localIndex);
      let s = lane / ${tokens};
      let n = (workgroup % uniforms.tiles) * ${tokens} + lane % ${tokens};
      // Folding the dispatch into 2-D can add workgroups past the last group.
      let hasGroup = group < groups;
      let hasToken = hasGroup && n < uniforms.perGroup;
      let token = group + groups * n;

      var x : array<${vector}, ${vectors}>;
      if (hasToken) {
        for (var q = 0; q < ${vectors}; q++) { x[q] = tokens[token * ${vectors} + q]; }
      }
      var best = uniforms.INFINITY;
      var bestCode = 0;
      let first = group * codes * ${vectors};
      // Barriers stay in uniform control flow: the loop bounds come from uniforms only.
      for (var start = 0; start < codes; start += ${tileCodes}) {
        let count = min(${tileCodes}, codes - start);
        if (hasGroup) {
          for (var j = lane; j < count * ${vectors}; j += ${WORKGROUP}) {
            tile[j] = codebook[first + start * ${vectors} + j];
          }
        }
        workgroupBarrier();
        if (hasToken) {
          for (var c = s; c < count; c += ${lanes}) {
            var distance = 0.0;
            for (var q = 0; q < ${vectors}; q++) {
              let diff = x[q] - tile[c * ${vectors} + q];
              distance += ${square};
            }
            if (distance < best) {
              best = distance;
              bestCode = start + c;
            }
          }
        }
        workgroupBarrier();
      }

      // Merge the lanes of each token pairwise; (distance, code) order keeps the lowest code.
      laneDistances[lane] = best;
      laneCodes[lane] = bestCode;
      workgroupBarrier();
      for (var half : i32 = ${lanes >> 1}; half > 0; half /= 2) {
        if (s < half) {
          let other = lane + half * ${tokens};
          let d = laneDistances[other];
          let k = laneCodes[other];
          if (d < best || (d == best && k < bestCode)) {
            best = d;
            bestCode = k;
            laneDistances[lane] = d;
            laneCodes[lane] = k;
          }
        }
        workgroupBarrier();
      }
      if (hasToken && s == 0) {
        result[token] = group * codes + bestCode;
      }
    }
  `;
}

export const nearestCodeKernel: tf.KernelConfig = {
  kernelName: NEAREST_CODE,
  backendName: "webgpu",
  kernelFunc: (args) => {
    const { codebook, tokens } = args.inputs as Record<"codebook" | "tokens", tf.TensorInfo>;
    const [groups, , dim] = codebook.shape;
    // Codes longer than a tile (D > 2048, far beyond the method's 4 or 8): the composition, whose
    // argMin on webgpu may take a later one of exactly tied codes.
    if (dim > TILE_FLOATS) return nearestCodeReferenceKernel(args);
    const layout = layoutFor(dim, tokens.shape[0] / groups);
    const program = new NearestCodeProgram(layout, groups);
    return (args.backend as WebGPUBackend).runWebGPUProgram(program, [codebook, tokens], "int32", [
      i32(layout.perGroup),
      i32(layout.tiles),
    ]);
  },
};
