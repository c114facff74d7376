/**
 * The TensorFlow.js backend the console decodes on: WebGPU where the browser offers an adapter,
 * else WebAssembly (XNNPACK), whose .wasm files console/build.ts copies into the console's own
 * assets (WASM_DIR), so that nothing is loaded from another site. WebGL is not tried: the
 * project's ops (gpu-worker/src/ops) register their reference kernels for the backends the
 * worker runs on, and webgl is not one of them.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Where the wasm backend's files are served (a directory prefix: it picks SIMD or not itself). */
export const WASM_DIR = "/tfjs/";

export type Backend = { name: "webgpu" | "wasm"; detail: string };

let started: Promise<Backend> | undefined;

/** Starts the first backend that works here, once per page. */
export function startBackend(): Promise<Backend> {
  started ??= choose().catch((error: unknown) => {
    started = undefined;
    throw error;
  });
  return started;
}

async function choose(): Promise<Backend> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (gpu && (await gpu.requestAdapter().catch(() => null))) {
    await import("@tensorflow/tfjs-backend-webgpu");
    if (await tf.setBackend("webgpu")) return { name: "webgpu", detail: "WebGPU" };
  }
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  wasm.setWasmPaths(WASM_DIR);
  if (await tf.setBackend("wasm")) {
    return { name: "wasm", detail: "WebAssembly (no WebGPU adapter in this browser)" };
  }
  throw new Error("Neither WebGPU nor WebAssembly started in this browser.");
}
