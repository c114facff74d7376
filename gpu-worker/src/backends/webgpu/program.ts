/**
 * What the fused WebGPU kernels share: their uniforms and the shape of a program made of
 * workgroups (tfjs-backend-webgpu's WebGPUProgram, run by backend.runWebGPUProgram).
 */
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";

/**
 * A program-defined uniform. One value an entry: tfjs lays an entry of several values out as a
 * vector, whose alignment the WGSL struct of single fields does not have.
 */
export type Uniform = { type: "float32" | "int32"; data: [number] };

export const f32 = (value: number): Uniform => ({ type: "float32", data: [value] });
export const i32 = (value: number): Uniform => ({ type: "int32", data: [value] });

export type WorkgroupProgramSpec = {
  /** Names the compiled pipeline, with the sizes that are compiled into it. */
  key: string;
  variableNames: string[];
  outputShape: number[];
  /** Workgroups, one after another (the backend folds them past 65535). */
  groups: number;
  /** Invocations per workgroup. */
  threads: number;
  /** WGSL fields of the uniform struct, e.g. "count : i32,". */
  uniforms?: string;
  /** WGSL defining `fn main(index : i32)` (and whatever it needs). */
  body: string;
};

/** A program of `groups` workgroups of `threads` invocations each. */
export function workgroupProgram(spec: WorkgroupProgramSpec): WebGPUProgram {
  return {
    variableNames: spec.variableNames,
    outputShape: spec.outputShape,
    shaderKey: `revq_${spec.key}`,
    dispatchLayout: { x: [0] },
    dispatch: [spec.groups, 1, 1],
    workgroupSize: [spec.threads, 1, 1],
    ...(spec.uniforms ? { uniforms: spec.uniforms } : {}),
    getUserCode: () => spec.body,
  };
}
