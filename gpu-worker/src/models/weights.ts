/**
 * Loading parameters from PyTorch state dicts, one tensor at a time, into tfjs layouts:
 * conv OIHW → HWIO, depthwise [C,1,k,k] → [k,k,C,1], linear [out,in] → [in,out], grouped 1×1
 * [G·d,d,1,1] → [G,d_in,d_out]. Every read names the PyTorch shape it expects, so a checkpoint
 * of another configuration fails with the tensor's name instead of computing nonsense.
 */

import * as tf from "@tensorflow/tfjs-core";
import type { Conv, Depthwise, RmsNorm } from "./nn/layers.ts";

/** Where parameters come from: a safetensors file, bytes in memory, a random initialiser. */
export interface TensorSource {
  /** Row-major float32 data of `name`, which must have the PyTorch shape `shape`. */
  read(name: string, shape: readonly number[]): Promise<Float32Array>;
  /** Every tensor the source holds: loading fails if any is left unread. */
  names(): Iterable<string>;
}

/** Turns a freshly loaded tensor into a parameter (a tf.Variable for training, say). */
export type MakeParam = (t: tf.Tensor) => tf.Tensor;

/** How a parameter's tfjs layout relates to its PyTorch tensor(s). */
export type Layout = "conv" | "depthwise" | "linear" | "linears" | "grouped" | "vector";

/** One parameter and the state-dict entries it came from, to write it (or its gradient) back. */
export type Binding = {
  param: tf.Tensor;
  layout: Layout;
  /** PyTorch names: one, or several side by side for `linears`. */
  names: string[];
  /** PyTorch shape of each named tensor. */
  torchShape: readonly number[];
};

export type ParamLoader = ReturnType<typeof paramLoader>;

export function paramLoader(source: TensorSource, make: MakeParam = (t) => t) {
  const read = new Set<string>();
  const bindings: Binding[] = [];
  const get = async (name: string, shape: readonly number[]) => {
    read.add(name);
    return source.read(name, shape);
  };
  const bind = <T extends tf.Tensor>(
    t: T,
    layout: Layout,
    names: string[],
    torchShape: number[],
  ): T => {
    const param = make(t) as T;
    if (param !== t) t.dispose();
    bindings.push({ param, layout, names, torchShape });
    return param;
  };
  const vector = async (name: string, n: number) =>
    bind(tf.tensor1d(await get(name, [n])), "vector", [name], [n]);
  return {
    bindings,
    vector,
    async conv(name: string, cin: number, cout: number, k: number, bias: boolean): Promise<Conv> {
      const shape = [cout, cin, k, k];
      const data = permute(await get(`${name}.weight`, shape), shape, [2, 3, 1, 0]);
      return {
        filter: bind(tf.tensor4d(data, [k, k, cin, cout]), "conv", [`${name}.weight`], shape),
        bias: bias ? await vector(`${name}.bias`, cout) : null,
      };
    },
    async depthwise(name: string, channels: number, k: number, bias: boolean): Promise<Depthwise> {
      const shape = [channels, 1, k, k];
      const data = permute(await get(`${name}.weight`, shape), [channels, k, k], [1, 2, 0]);
      return {
        filter: bind(
          tf.tensor4d(data, [k, k, channels, 1]),
          "depthwise",
          [`${name}.weight`],
          shape,
        ),
        bias: bias ? await vector(`${name}.bias`, channels) : null,
      };
    },
    /** A bias-free nn.Linear as the [in, out] matrix x is multiplied by. */
    async linear(name: string, cin: number, cout: number): Promise<tf.Tensor2D> {
      const data = permute(await get(`${name}.weight`, [cout, cin]), [cout, cin], [1, 0]);
      return bind(tf.tensor2d(data, [cin, cout]), "linear", [`${name}.weight`], [cout, cin]);
    },
    /** Several bias-free linears of one input, side by side: [in, Σ out]. */
    async linears(names: string[], cin: number, cout: number): Promise<tf.Tensor2D> {
      const stacked = new Float32Array(names.length * cout * cin);
      for (const [i, name] of names.entries()) {
        stacked.set(await get(`${name}.weight`, [cout, cin]), i * cout * cin);
      }
      const total = names.length * cout;
      const data = permute(stacked, [total, cin], [1, 0]);
      const weights = names.map((n) => `${n}.weight`);
      return bind(tf.tensor2d(data, [cin, total]), "linears", weights, [cout, cin]);
    },
    /** A bias-free 1×1 conv with `groups` groups of d channels in and out: [G, d_in, d_out]. */
    async grouped(name: string, groups: number, d: number): Promise<tf.Tensor3D> {
      const shape = [groups * d, d, 1, 1];
      const data = permute(await get(`${name}.weight`, shape), [groups, d, d], [0, 2, 1]);
      return bind(tf.tensor3d(data, [groups, d, d]), "grouped", [`${name}.weight`], shape);
    },
    async rmsNorm(name: string, channels: number, eps: number): Promise<RmsNorm> {
      return {
        weight: await vector(`${name}.weight`, channels),
        bias: await vector(`${name}.bias`, channels),
        eps,
      };
    },
    /** Fails unless every tensor of the source (under `prefix`) was read: strict loading. */
    finish(prefix = ""): void {
      const names = [...source.names()].filter((name) => name.startsWith(prefix));
      const unread = names.filter((name) => !read.has(name));
      if (unread.length > 0) {
        const shown = unread.slice(0, 5).join(", ");
        throw new Error(
          `${unread.length} tensors were not used: ${shown}${unread.length > 5 ? ", ..." : ""}`,
        );
      }
    },
  };
}

/**
 * A parameter (or a tensor of its shape: its gradient, its Adam moment) as PyTorch state-dict
 * entries: the inverse of the loader's layout change.
 */
export async function toTorch(
  binding: Binding,
  value: tf.Tensor = binding.param,
): Promise<[string, Float32Array][]> {
  // An asynchronous read: WebGPU in Node cannot read synchronously.
  const data = (await value.data()) as Float32Array;
  const s = value.shape;
  switch (binding.layout) {
    case "conv":
      return [[binding.names[0], permute(data, s, [3, 2, 0, 1])]];
    case "depthwise":
      return [[binding.names[0], permute(data, s.slice(0, 3), [2, 0, 1])]];
    case "linear":
      return [[binding.names[0], permute(data, s, [1, 0])]];
    case "grouped":
      return [[binding.names[0], permute(data, s, [0, 2, 1])]];
    case "vector":
      return [[binding.names[0], data]];
    case "linears": {
      const rows = permute(data, s, [1, 0]); // [Σ out, in]: the named weights one after another
      const size = rows.length / binding.names.length;
      return binding.names.map((name, i) => [name, rows.slice(i * size, (i + 1) * size)]);
    }
  }
}

/** Row-major transpose of `data` with shape `shape` by `perm` (output axis i = input axis perm[i]). */
export function permute(
  data: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
): Float32Array {
  const rank = shape.length;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  const outShape = perm.map((p) => shape[p]);
  const outStrides = perm.map((p) => strides[p]); // input stride of each output axis
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  let source = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = data[source];
    // Advance the output multi-index (last axis fastest) and the matching input offset.
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]++;
      source += outStrides[axis];
      if (index[axis] < outShape[axis]) break;
      source -= outStrides[axis] * outShape[axis];
      index[axis] = 0;
    }
  }
  return out;
}
