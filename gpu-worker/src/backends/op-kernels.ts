/**
 * Kernels written as compositions of tfjs ops, for backends whose own kernel is missing, slow, or
 * fails at the sizes training needs (wasm-gradients.ts, webgpu.ts). Only @tensorflow/tfjs-core.
 */
import * as tf from "@tensorflow/tfjs-core";

export type Attrs = Record<string, unknown>;
export type OpKernel = (inputs: Record<string, tf.Tensor>, attrs: Attrs) => tf.Tensor | tf.Tensor[];

/**
 * A kernel whose body is made of ops (one output, or several in order). Inside a kernel the
 * engine records no gradients, and the inputs are the tensors the op was called with. Each
 * result's data outlives the temporary tensor that computed it through one extra reference,
 * which the engine's output tensor takes over.
 */
export function fromOps(kernel: OpKernel): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    for (const [name, input] of Object.entries(inputs)) {
      if (!(input instanceof tf.Tensor)) throw new Error(`op kernel: ${name} is no tensor`);
    }
    const out = tf.tidy(() => kernel(inputs as Record<string, tf.Tensor>, attrs as Attrs));
    const keep = (t: tf.Tensor): tf.TensorInfo => {
      (backend as unknown as { incRef(dataId: object): void }).incRef(t.dataId);
      const info = { dataId: t.dataId, shape: t.shape, dtype: t.dtype };
      t.dispose();
      return info;
    };
    return Array.isArray(out) ? out.map(keep) : keep(out);
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

/** Every backend the worker can run on (backend.ts); the reference kernels serve all of them. */
const ALL_BACKENDS = ["tensorflow", "webgpu", "wasm", "cpu"] as const;

const referenceKernels = new WeakSet<tf.KernelFunc>();

/**
 * Registers a project op's reference kernel (its plain composition) on every backend that has no
 * kernel of that name yet, so that a backend's fast kernel, registered before or after, wins.
 */
export function registerReferenceKernel(kernelName: string, kernelFunc: tf.KernelFunc): void {
  referenceKernels.add(kernelFunc);
  for (const backendName of ALL_BACKENDS) {
    if (!tf.getKernel(kernelName, backendName)) {
      tf.registerKernel({ kernelName, backendName, kernelFunc });
    }
  }
}

/**
 * Whether the current backend has a fast kernel of its own for a project op. Where it has none,
 * the op runs its plain composition directly, differentiated by tfjs itself: on wasm, training
 * through the reference kernels and their hand-written gradients took 3× as long a step (tiny
 * rectifier: 166 against 47 ms), for nothing, since the composition is what they compute.
 */
export function hasFastKernel(kernelName: string): boolean {
  const kernel = tf.getKernel(kernelName, tf.getBackend());
  return kernel !== undefined && !referenceKernels.has(kernel.kernelFunc);
}
