/**
 * tfjs-webgpu's backend with one change: a tensor made from host values is uploaded with
 * `queue.writeBuffer` into a buffer from the backend's pool. tfjs-webgpu maps a new staging
 * buffer for every upload of a reused buffer, so every batch and every scalar constant of a step
 * created a GPU buffer; here, once the pool is warm, none is. The write lands before the next
 * submit, and a pooled buffer is never referenced by commands not yet submitted (tfjs releases
 * a buffer those commands use only when it submits them), so the order is the same.
 */

import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import type * as tf from "@tensorflow/tfjs-core";

export class WritingWebGPUBackend extends WebGPUBackend {
  override uploadToGPU(dataId: object): void {
    const data = this.tensorMap.get(dataId);
    const values = data.values as ArrayLike<number> | null;
    const complex = data.dtype === "complex64" || data.dtype === "string";
    if (data.resource != null || values == null || values.length === 0 || complex) {
      super.uploadToGPU(dataId);
      return;
    }
    // int32 and bool are both 32-bit integers on the GPU (tfjs-webgpu's layout).
    const typed = data.dtype === "float32" ? toFloat32(values) : Int32Array.from(values);
    const buffer = this.bufferManager.acquireBuffer(
      typed.byteLength,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    );
    this.queue.writeBuffer(buffer, 0, typed.buffer, typed.byteOffset, typed.byteLength);
    data.resource = buffer;
    data.values = null as unknown as tf.BackendValues; // uploaded: no host copy, as tfjs does
  }
}

function toFloat32(values: ArrayLike<number>): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}
