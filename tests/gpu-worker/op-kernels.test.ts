import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI).
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);

describe("gather's gradient (UnsortedSegmentSum) on webgpu", () => {
  // The paper's codebook: 512 groups × 16384 codes of 4. tfjs-webgpu's own kernel fails here
  // ("Dispatch size exceeds WebGPU limits"); the ScatterNd one sums the rows into place.
  it.skipIf(!webgpu)("sums repeated rows into a codebook of 8.4M codes", async () => {
    await selectBackend("webgpu");
    const codes = 512 * 16384;
    const rows = [0, 5, 5, codes - 1, 77_777, 5, codes - 1];
    const dy = values(rows.length * 4, 3);
    const grad = tf.tidy(() => {
      const table = tf.zeros([codes, 4]);
      const weights = tf.tensor2d(dy, [rows.length, 4]);
      const indices = tf.tensor1d(rows, "int32");
      const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, indices), weights));
      return tf.grad(f)(table);
    });
    expect(grad.shape).toEqual([codes, 4]);
    const got = (await grad.data()) as Float32Array;
    grad.dispose();
    const expected = new Map<number, number[]>();
    rows.forEach((row, r) => {
      const sum = expected.get(row) ?? [0, 0, 0, 0];
      expected.set(
        row,
        sum.map((v, d) => v + dy[r * 4 + d]),
      );
    });
    let nonzero = 0;
    for (let i = 0; i < got.length; i++) if (got[i] !== 0) nonzero++;
    expect(nonzero).toBe(expected.size * 4);
    for (const [row, sum] of expected) {
      for (let d = 0; d < 4; d++) expect(got[row * 4 + d]).toBeCloseTo(sum[d], 5);
    }
  });
});
