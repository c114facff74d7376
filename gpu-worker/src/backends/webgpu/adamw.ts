/**
 * The fused AdamW ops (ops/adamw.ts) on webgpu. The moments: two elementwise dispatches over the
 * flattened group, m then v (a program writes one output, and may not read the buffer it
 * writes, so they are not updated in place). Each parameter: one dispatch reading its span of
 * the new moments. The step-dependent numbers travel as uniforms, so no constant tensor is
 * uploaded per step. Σ x²: partial sums in up to 1024 workgroups, then tfjs's sum of those.
 */

import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import {
  ADAMW_MOMENTS,
  ADAMW_PARAM,
  type MomentAttrs,
  type ParamAttrs,
  SUM_SQUARES,
} from "../../ops/adamw.ts";
import { f32, i32, workgroupProgram } from "./program.ts";

/** A flat elementwise program over outputShape whose body writes result[index]. */
function elementwise(
  name: string,
  variableNames: string[],
  outputShape: number[],
  uniforms: string,
  body: string,
): WebGPUProgram {
  const dispatchLayout = webgpu_util.flatDispatchLayout(outputShape);
  const workgroupSize: [number, number, number] = [64, 1, 1];
  return {
    variableNames,
    outputShape,
    shaderKey: `revq_adamw_${name}`,
    dispatchLayout,
    dispatch: webgpu_util.computeDispatch(dispatchLayout, outputShape, workgroupSize),
    workgroupSize,
    size: true,
    uniforms,
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }
    `,
  };
}

/** m ← β1·m + (1 − β1)·g·coef, v ← β2·v + (1 − β2)·(g·coef)²; coef from Σg² (clip_grad_norm_). */
function momentProgram(size: number, which: "m" | "v"): WebGPUProgram {
  const added = which === "m" ? "g" : "g * g";
  return elementwise(
    which,
    ["M", "G", "S"],
    [size],
    "beta : f32, rest : f32, maxNorm : f32,",
    `let coef = min(uniforms.maxNorm / (sqrt(S[0]) + 1e-6), 1.0);
          let g = G[index] * coef;
          result[index] = M[index] * uniforms.beta + ${added} * uniforms.rest;`,
  );
}

/** p ← p·decay − stepSize·m / (√v / correction2 + ε), m and v from the parameter's span. */
function paramProgram(shape: number[]): WebGPUProgram {
  return elementwise(
    "param",
    ["X", "M", "V"],
    shape,
    "offset : i32, decay : f32, stepSize : f32, correction2 : f32, eps : f32,",
    `let at = index + uniforms.offset;
          let denom = sqrt(V[at]) / uniforms.correction2 + uniforms.eps;
          result[index] = X[index] * uniforms.decay - M[at] * uniforms.stepSize / denom;`,
  );
}

export const adamwMomentsKernel: tf.KernelConfig = {
  kernelName: ADAMW_MOMENTS,
  backendName: "webgpu",
  kernelFunc: ({ inputs, attrs, backend }) => {
    const gpu = backend as WebGPUBackend;
    const { m, v, grad, sumSquares } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as MomentAttrs;
    const size = m.shape[0];
    const update = (which: "m" | "v", moment: tf.TensorInfo, beta: number) =>
      gpu.runWebGPUProgram(momentProgram(size, which), [moment, grad, sumSquares], "float32", [
        f32(beta),
        f32(1 - beta),
        f32(a.maxNorm),
      ]);
    return [update("m", m, a.beta1), update("v", v, a.beta2)];
  },
};

export const adamwParamKernel: tf.KernelConfig = {
  kernelName: ADAMW_PARAM,
  backendName: "webgpu",
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { param, m, v } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as ParamAttrs;
    return (backend as WebGPUBackend).runWebGPUProgram(
      paramProgram(param.shape),
      [param, m, v],
      "float32",
      [i32(a.offset), f32(a.decay), f32(a.stepSize), f32(a.correction2), f32(a.eps)],
    );
  },
};

const PARTIAL_WORKGROUP = 256;
const MAX_PARTIALS = 1024;

/** result[w] = Σ x² over the elements w·256 + t + k·(W·256) of x: W partial sums. */
function partialSquaresProgram(size: number): WebGPUProgram {
  const partials = Math.min(MAX_PARTIALS, Math.ceil(size / PARTIAL_WORKGROUP));
  return workgroupProgram({
    key: "partial_squares",
    variableNames: ["X"],
    outputShape: [partials],
    groups: partials,
    threads: PARTIAL_WORKGROUP,
    uniforms: "count : i32, stride : i32,",
    body: `
      var<workgroup> sums : array<f32, ${PARTIAL_WORKGROUP}>;
      fn main(index : i32) {
        let t = i32(localId.x);
        var sum = 0.0;
        for (var i = i32(workgroupId.x) * ${PARTIAL_WORKGROUP} + t; i < uniforms.count; i += uniforms.stride) {
          sum += X[i] * X[i];
        }
        sums[t] = sum;
        workgroupBarrier();
        for (var half = ${PARTIAL_WORKGROUP / 2}; half > 0; half >>= 1) {
          if (t < half) {
            sums[t] += sums[t + half];
          }
          workgroupBarrier();
        }
        if (t == 0) {
          result[workgroupId.x] = sums[0];
        }
      }
    `,
  });
}

export const sumSquaresKernel: tf.KernelConfig = {
  kernelName: SUM_SQUARES,
  backendName: "webgpu",
  kernelFunc: ({ inputs, backend }) => {
    const gpu = backend as WebGPUBackend;
    const { x } = inputs as { x: tf.TensorInfo };
    const size = x.shape[0];
    const program = partialSquaresProgram(size);
    const stride = program.outputShape[0] * PARTIAL_WORKGROUP;
    const partials = gpu.runWebGPUProgram(program, [x], "float32", [i32(size), i32(stride)]);
    // tfjs-webgpu's own Sum, called as a kernel function: no tensor for the engine to track.
    const sum = tf.getKernel(tf.Sum, "webgpu") as tf.KernelConfig;
    const total = sum.kernelFunc({
      inputs: { x: partials },
      attrs: { axis: 0, keepDims: false },
      backend,
    }) as tf.TensorInfo;
    gpu.disposeData(partials.dataId);
    return total;
  },
};
