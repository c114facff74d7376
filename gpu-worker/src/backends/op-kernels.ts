/**
 * Kernels written as compositions of tfjs ops, for backends whose own kernel is missing, slow, or
 * fails at the sizes training needs (wasm-gradients.ts, webgpu.ts). Only @tensorflow/tfjs-core.
 */
import * as tf from "@tensorflow/tfjs-core";

export type Attrs = Record<string, unknown>;
export type OpKernel = (inputs: Record<string, tf.Tensor>, attrs: Attrs) => tf.Tensor;

/**
 * A kernel whose body is made of ops. Inside a kernel the engine records no gradients, and the
 * inputs are the tensors the op was called with. The result's data outlives the temporary tensor
 * that computed it through one extra reference, which the engine's output tensor takes over.
 */
export function fromOps(kernel: OpKernel): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    for (const [name, input] of Object.entries(inputs)) {
      if (!(input instanceof tf.Tensor)) throw new Error(`op kernel: ${name} is no tensor`);
    }
    const out = tf.tidy(() => kernel(inputs as Record<string, tf.Tensor>, attrs as Attrs));
    (backend as unknown as { incRef(dataId: object): void }).incRef(out.dataId);
    const info = { dataId: out.dataId, shape: out.shape, dtype: out.dtype };
    out.dispose();
    return info;
  };
}

/**
 * out[s, ...] = Σ over rows r with segmentIds[r] = s of x[r, ...]; ids must lie in [0, S).
 * ScatterNd sums updates to the same index, and its work grows with the rows, not with S: a
 * codebook gradient has millions of segments (512 groups × 16384 codes) and a few thousand rows.
 */
export function unsortedSegmentSum(
  x: tf.Tensor,
  segmentIds: tf.Tensor,
  numSegments: number,
): tf.Tensor {
  const rows = segmentIds.size;
  const rest = x.shape.slice(segmentIds.rank);
  const ids = tf.reshape(tf.cast(segmentIds, "int32"), [rows, 1]);
  return tf.scatterND(ids, tf.reshape(x, [rows, ...rest]), [numSegments, ...rest]);
}

/** The UnsortedSegmentSum kernel of `backend`, as a ScatterNd (gather's gradient). */
export function segmentSumKernel(backendName: string): tf.KernelConfig {
  return {
    kernelName: tf.UnsortedSegmentSum,
    backendName,
    kernelFunc: fromOps((i, a) => unsortedSegmentSum(i.x, i.segmentIds, a.numSegments as number)),
  };
}

/**
 * AddN as a left fold of two-input adds. WebGPU binds every input of one kernel as a storage
 * buffer, at most 8 per stage by default, so one AddN over a rectifier's dozens of gradients is
 * an invalid pipeline whose output is never written.
 */
export function foldedAddNKernel(backendName: string): tf.KernelConfig {
  return {
    kernelName: tf.AddN,
    backendName,
    kernelFunc: fromOps((inputs) => {
      const terms = Object.values(inputs);
      return terms.slice(1).reduce((total, t) => tf.add(total, t), terms[0]);
    }),
  };
}
