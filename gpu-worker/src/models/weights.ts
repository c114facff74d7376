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

export type ParamLoader = ReturnType<typeof paramLoader>;

export function paramLoader(source: TensorSource, make: MakeParam = (t) => t) {
  const read = new Set<string>();
  const get = async (name: string, shape: readonly number[]) => {
    read.add(name);
    return source.read(name, shape);
  };
  const param = <T extends tf.Tensor>(t: T): T => {
    const made = make(t) as T;
    if (made !== t) t.dispose();
    return made;
  };
  const vector = async (name: string, n: number) => param(tf.tensor1d(await get(name, [n])));
  return {
    vector,
    async conv(name: string, cin: number, cout: number, k: number, bias: boolean): Promise<Conv> {
      const data = await get(`${name}.weight`, [cout, cin, k, k]);
      return {
        filter: param(
          tf.tensor4d(permute(data, [cout, cin, k, k], [2, 3, 1, 0]), [k, k, cin, cout]),
        ),
        bias: bias ? await vector(`${name}.bias`, cout) : null,
      };
    },
    async depthwise(name: string, channels: number, k: number, bias: boolean): Promise<Depthwise> {
      const data = await get(`${name}.weight`, [channels, 1, k, k]);
      return {
        filter: param(tf.tensor4d(permute(data, [channels, k, k], [1, 2, 0]), [k, k, channels, 1])),
        bias: bias ? await vector(`${name}.bias`, channels) : null,
      };
    },
    /** A bias-free nn.Linear as the [in, out] matrix x is multiplied by. */
    async linear(name: string, cin: number, cout: number): Promise<tf.Tensor2D> {
      const data = await get(`${name}.weight`, [cout, cin]);
      return param(tf.tensor2d(permute(data, [cout, cin], [1, 0]), [cin, cout]));
    },
    /** Several bias-free linears of one input, side by side: [in, Σ out]. */
    async linears(names: string[], cin: number, cout: number): Promise<tf.Tensor2D> {
      const parts: Float32Array[] = [];
      for (const name of names) parts.push(await get(`${name}.weight`, [cout, cin]));
      const stacked = new Float32Array(names.length * cout * cin);
      parts.forEach((part, i) => {
        stacked.set(part, i * cout * cin);
      });
      const total = names.length * cout;
      return param(tf.tensor2d(permute(stacked, [total, cin], [1, 0]), [cin, total]));
    },
    /** A bias-free 1×1 conv with `groups` groups of d channels in and out: [G, d_in, d_out]. */
    async grouped(name: string, groups: number, d: number): Promise<tf.Tensor3D> {
      const data = await get(`${name}.weight`, [groups * d, d, 1, 1]);
      return param(tf.tensor3d(permute(data, [groups, d, d], [0, 2, 1]), [groups, d, d]));
    },
    async rmsNorm(name: string, channels: number, eps: number): Promise<RmsNorm> {
      return {
        weight: await vector(`${name}.weight`, channels),
        bias: await vector(`${name}.bias`, channels),
        eps,
      };
    },
    /** Fails unless every tensor of the source was read (PyTorch's strict loading). */
    finish(): void {
      const unread = [...source.names()].filter((name) => !read.has(name));
      if (unread.length > 0) {
        const shown = unread.slice(0, 5).join(", ");
        throw new Error(
          `${unread.length} tensors were not used: ${shown}${unread.length > 5 ? ", ..." : ""}`,
        );
      }
    },
  };
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
