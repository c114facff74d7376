/** TensorSources that need no Node APIs: safetensors bytes in memory, and a random initialiser. */

import { parseSafetensors, readTensor, type TensorInfo } from "@revq/shared";
import type { TensorSource } from "./weights.ts";

/**
 * The tensors of a safetensors file held in memory whose names start with `prefix` (stripped:
 * `init.decoder.` turns a training fixture's decoder into a plain state dict).
 */
export function safetensorsSource(bytes: Uint8Array, prefix = ""): TensorSource {
  const file = parseSafetensors(bytes);
  const names = [...file.tensors.keys()].filter((n) => n.startsWith(prefix));
  return {
    async read(name, shape) {
      const full = prefix + name;
      const info = file.tensors.get(full);
      if (!info) throw new Error(`the checkpoint has no tensor ${full}`);
      checkShape(info, shape);
      return toFloat32(readTensor(file, full).data, full);
    },
    names: () => names.map((n) => n.slice(prefix.length)),
  };
}

export function checkShape(info: TensorInfo, shape: readonly number[]): void {
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`tensor ${info.name} has shape [${info.shape}], the model expects [${shape}]`);
  }
}

export function toFloat32(data: ArrayLike<number> | ArrayLike<bigint>, name: string): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof Float64Array) return Float32Array.from(data);
  throw new Error(`tensor ${name} is not floating point`);
}

/**
 * PyTorch's default initialisation, drawn from a seeded generator: conv and linear weights and
 * biases uniform in ±1/sqrt(fan_in) (kaiming_uniform with a = √5 gives the same bound for the
 * weights), norm weights 1 and biases 0 (names ending in `norm*.weight` / `.bias`).
 */
export function randomInitSource(seed: number): TensorSource {
  let state = seed >>> 0 || 1;
  const uniform = () => {
    // xorshift32: fast, deterministic and good enough for an initialisation.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const read: string[] = [];
  let fanIn = 1; // of the last weight read: the loader reads a layer's bias right after its weight
  return {
    async read(name, shape) {
      read.push(name);
      const size = shape.reduce((a, b) => a * b, 1);
      if (/norm[^.]*\.weight$/.test(name)) return new Float32Array(size).fill(1);
      if (/norm[^.]*\.bias$/.test(name)) return new Float32Array(size);
      if (shape.length > 1) fanIn = size / shape[0]; // a weight [out, in/groups, ...]
      const bound = 1 / Math.sqrt(fanIn);
      return Float32Array.from({ length: size }, () => (2 * uniform() - 1) * bound);
    },
    names: () => read,
  };
}
