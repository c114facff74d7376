/**
 * ops/silu.ts's four kernels for @tensorflow/tfjs-backend-webgpu, one dispatch each.
 *
 * They are memory-bound, so each thread moves one vec4 (16-byte loads and stores) wherever the
 * layout allows it, one float otherwise. Every tensor is bound flat: the kernels index whole
 * rows themselves, so no shape reaches the shader and any rank works. The dispatch is flat (x
 * only), which lets runWebGPUProgram fold one over the device's 65535 workgroups per dimension
 * into a square or cube; tfjs's getGlobalIndex (main's `index`) then counts through all of
 * them, and the `threads` guard drops the surplus the fold rounds up to.
 */
import {
  type WebGPUBackend,
  type WebGPUProgram,
  webgpu_util,
} from "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import { GLU, GLU_GRAD, SILU, SILU_GRAD } from "../../ops/silu.ts";
import { i32 } from "./program.ts";

/** 64 threads fill an SM with resident workgroups (H100: 32 per SM × 64 = 2048 threads). */
const WORKGROUP: [number, number, number] = [64, 1, 1];

/** How the threads cover a kernel's values. */
type Layout = {
  /** Values per thread: 4 (one vec4) or 1. */
  component: number;
  threads: number;
  /** In vectors, H: the distance from a row's a to its gate (0 for elementwise kernels). */
  half: number;
};

/** One dispatch: `main` runs per thread, over flat arrays named `names`, into `result`. */
type Dispatch = {
  key: string;
  names: string[];
  inputs: tf.TensorInfo[];
  layout: Layout;
  /** The result's shape. */
  shape: number[];
  main: string;
};

type Inputs = { x: tf.TensorInfo; dy: tf.TensorInfo };

/** silu(x), elementwise. */
export const siluKernel: tf.KernelConfig = {
  kernelName: SILU,
  backendName: "webgpu",
  kernelFunc: ({ inputs, backend }) => {
    const { x } = inputs as Inputs;
    return run(backend, {
      key: "revq_silu",
      names: ["x"],
      inputs: [x],
      layout: elementwise(x),
      shape: x.shape,
      main: "result[index] = silu(x[index]);",
    });
  },
};

/** dy·silu'(x), elementwise. */
export const siluGradKernel: tf.KernelConfig = {
  kernelName: SILU_GRAD,
  backendName: "webgpu",
  kernelFunc: ({ inputs, backend }) => {
    const { dy, x } = inputs as Inputs;
    return run(backend, {
      key: "revq_silu_grad",
      names: ["dy", "x"],
      inputs: [dy, x],
      layout: elementwise(x),
      shape: x.shape,
      main: "result[index] = dy[index] * siluGrad(x[index]);",
    });
  },
};

/**
 * a·silu(gate) [rows, H] from x [rows, 2H]: thread `index` is output (row, col); its a is x's
 * row·2H + col = index + row·H, its gate lies H further.
 */
export const gluKernel: tf.KernelConfig = {
  kernelName: GLU,
  backendName: "webgpu",
  kernelFunc: ({ inputs, backend }) => {
    const { x } = inputs as Inputs;
    return run(backend, {
      key: "revq_glu",
      names: ["x"],
      inputs: [x],
      layout: gated(x),
      shape: [...x.shape.slice(0, -1), x.shape[x.shape.length - 1] / 2],
      main: `
        let a = index + (index / uniforms.half) * uniforms.half;
        result[index] = x[a] * silu(x[a + uniforms.half]);`,
    });
  },
};

/** [dy·silu(gate) | dy·a·silu'(gate)]: each thread writes both halves of its (row, col). */
export const gluGradKernel: tf.KernelConfig = {
  kernelName: GLU_GRAD,
  backendName: "webgpu",
  kernelFunc: ({ inputs, backend }) => {
    const { dy, x } = inputs as Inputs;
    return run(backend, {
      key: "revq_glu_grad",
      names: ["dy", "x"],
      inputs: [dy, x],
      layout: gated(x),
      shape: x.shape,
      main: `
        let a = index + (index / uniforms.half) * uniforms.half;
        let gate = x[a + uniforms.half];
        let s = sigmoidOf(gate);
        let d = dy[index];
        result[a] = d * gate * s.s;
        result[a + uniforms.half] = d * x[a] * s.s * (1.0 + gate * s.c);`,
    });
  },
};

export const webgpuSiluKernels = [siluKernel, siluGradKernel, gluKernel, gluGradKernel];

/** One thread per value of x, or per vec4 where they split into whole ones. */
function elementwise(x: tf.TensorInfo): Layout {
  const size = tf.util.sizeFromShape(x.shape);
  const component = size % 4 === 0 ? 4 : 1;
  return { component, threads: size / component, half: 0 };
}

/** One thread per output value, or per vec4 where H splits into whole ones (so both halves do). */
function gated(x: tf.TensorInfo): Layout {
  const width = x.shape[x.shape.length - 1] / 2;
  const component = width % 4 === 0 ? 4 : 1;
  const threads = tf.util.sizeFromShape(x.shape) / 2 / component;
  return { component, threads, half: width / component };
}

/** Runs one dispatch on flat views of the inputs; returns its result under `shape`. */
function run(backend: unknown, dispatch: Dispatch): tf.TensorInfo {
  const flat = (t: tf.TensorInfo) => ({ ...t, shape: [tf.util.sizeFromShape(t.shape)] });
  const { threads, half } = dispatch.layout;
  const output = (backend as WebGPUBackend).runWebGPUProgram(
    program(dispatch),
    dispatch.inputs.map(flat),
    "float32",
    [i32(threads), i32(half)],
  );
  // A reshape, as tfjs's own: the same data under the caller's shape.
  return { ...output, shape: dispatch.shape };
}

function program({ key, names, layout, shape, main }: Dispatch): WebGPUProgram {
  const type = layout.component === 4 ? "vec4<f32>" : "f32";
  const dispatchLayout = webgpu_util.flatDispatchLayout([layout.threads]);
  return {
    variableNames: names,
    outputShape: [tf.util.sizeFromShape(shape)],
    outputComponent: layout.component,
    shaderKey: `${key}_${layout.component}`,
    dispatchLayout,
    dispatch: webgpu_util.computeDispatch(dispatchLayout, [layout.threads], WORKGROUP),
    workgroupSize: WORKGROUP,
    uniforms: "threads : i32, half : i32,",
    getUserCode: () => `
      ${sigmoidCode(type)}
      fn main(index : i32) {
        if (index < uniforms.threads) {
          ${main}
        }
      }`,
  };
}

/**
 * s = sigmoid(x) and c = 1 − s, both from e = exp(−|x|) ≤ 1. tfjs's SIGMOID, 1 / (1 + exp(−x)),
 * takes exp of up to +|x|, which overflows past 88, and WGSL lets a GPU assume no infinities
 * (fast math); and 1 − s computed as such loses c's digits for large x.
 */
function sigmoidCode(type: string): string {
  return `
    struct Sigmoid { s : ${type}, c : ${type} };
    fn sigmoidOf(x : ${type}) -> Sigmoid {
      let e = exp(-abs(x));
      let r = 1.0 / (1.0 + e);
      let positive = x >= ${type}(0.0);
      return Sigmoid(select(e, ${type}(1.0), positive) * r, select(${type}(1.0), e, positive) * r);
    }
    fn silu(x : ${type}) -> ${type} {
      return x * sigmoidOf(x).s;
    }
    // silu'(x) = s·(1 + x·(1 − s))
    fn siluGrad(x : ${type}) -> ${type} {
      let s = sigmoidOf(x);
      return s.s * (1.0 + x * s.c);
    }`;
}
