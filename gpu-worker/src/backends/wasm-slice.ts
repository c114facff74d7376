/**
 * A Slice kernel for wasm whose contiguous case copies only the slice. tfjs-wasm's own reads the
 * whole input out of the heap first (readSync), so every slice of a large tensor costs as much as
 * copying all of it: ~120 ms for any slice of 10M values, which made each of the rectifier's 46
 * parameters' spans of AdamW's flattened moments cost that much (ops/adamw.ts).
 */
import * as tf from "@tensorflow/tfjs-core";

type WasmBackend = {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
};

let registered = false;

/** Replaces wasm's Slice (once; the original serves the strided case). */
export function registerContiguousSlice(): void {
  if (registered) return;
  registered = true;
  const original = tf.getKernel(tf.Slice, "wasm") as tf.KernelConfig;
  tf.unregisterKernel(tf.Slice, "wasm");
  tf.registerKernel(contiguousSliceKernel(original));
}

function contiguousSliceKernel(original: tf.KernelConfig): tf.KernelConfig {
  return {
    ...original,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
      const [begins, sizes] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
      if (x.dtype === "string" || !tf.slice_util.isSliceContinous(x.shape, begins, sizes)) {
        return original.kernelFunc(args);
      }
      const backend = args.backend as unknown as WasmBackend;
      const offset = tf.slice_util.computeFlatOffset(begins, tf.util.computeStrides(x.shape));
      const count = tf.util.sizeFromShape(sizes);
      const out = backend.makeOutput(sizes, x.dtype);
      backend
        .typedArrayFromHeap(out)
        .set(backend.typedArrayFromHeap(x).subarray(offset, offset + count));
      return out;
    },
  };
}
