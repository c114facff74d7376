import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, selectBackend } from "../../../gpu-worker/src/backend.ts";

/** Runs fn on the named backend and returns its result as plain arrays (nothing left on it). */
export async function runOn<T>(backend: BackendName, fn: () => T | Promise<T>): Promise<T> {
  await selectBackend(backend);
  return fn();
}

/** Downloads tensors to Float32Arrays and disposes them (asynchronously: webgpu needs that). */
export async function download(tensors: tf.Tensor[]): Promise<Float32Array[]> {
  const out = await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(tensors);
  return out;
}

/** Deterministic values in [-1, 1) (a simple LCG), for inputs that must match across backends. */
export function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

/** max |a − b| / max(1e-30, max |b|): an error relative to the reference tensor's scale. */
export function scaledError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}
