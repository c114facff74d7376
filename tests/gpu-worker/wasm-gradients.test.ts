import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import type { BackendName } from "../../gpu-worker/src/backend.ts";
import { download, runOn, scaledError, values } from "./helpers/backends.ts";

// The cpu backend's gradients are the reference. Both are float32 with different summation order.
const TOLERANCE = 1e-5;

type Case = { name: string; grads: () => tf.Tensor[] };

function conv2dCase(
  name: string,
  input: [number, number, number, number],
  filter: [number, number, number, number],
  strides: number,
  pad: "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]],
): Case {
  return {
    name,
    grads: () => {
      const x = tf.tensor4d(
        values(
          input.reduce((a, b) => a * b),
          1,
        ),
        input,
      );
      const w = tf.tensor4d(
        values(
          filter.reduce((a, b) => a * b),
          2,
        ),
        filter,
      );
      const f = (xv: tf.Tensor4D, wv: tf.Tensor4D) =>
        tf.sum(tf.sin(tf.conv2d(xv, wv, strides, pad)));
      return tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([x, w]);
    },
  };
}

function depthwiseCase(
  name: string,
  input: [number, number, number, number],
  filter: [number, number, number, number],
  strides: number,
  pad: "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]],
): Case {
  return {
    name,
    grads: () => {
      const x = tf.tensor4d(
        values(
          input.reduce((a, b) => a * b),
          3,
        ),
        input,
      );
      const w = tf.tensor4d(
        values(
          filter.reduce((a, b) => a * b),
          4,
        ),
        filter,
      );
      const f = (xv: tf.Tensor4D, wv: tf.Tensor4D) =>
        tf.sum(tf.sin(tf.depthwiseConv2d(xv, wv, strides, pad)));
      return tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([x, w]);
    },
  };
}

const explicit1: [[number, number], [number, number], [number, number], [number, number]] = [
  [0, 0],
  [1, 1],
  [1, 1],
  [0, 0],
];

// tfjs's own conv gradients refuse dilation > 1, so no case here has it.
const CASES: Case[] = [
  conv2dCase("conv2d 3×3 same", [2, 6, 5, 3], [3, 3, 3, 4], 1, "same"),
  conv2dCase(
    "conv2d 3×3 stride 2, explicit pad 1, odd size",
    [2, 7, 9, 3],
    [3, 3, 3, 5],
    2,
    explicit1,
  ),
  conv2dCase("conv2d 3×3 valid", [2, 6, 5, 3], [3, 3, 3, 4], 1, "valid"),
  conv2dCase("conv2d 5×3 same", [2, 7, 6, 3], [5, 3, 3, 2], 1, "same"),
  conv2dCase("conv2d 1×1", [1, 4, 4, 6], [1, 1, 6, 2], 1, "valid"),
  depthwiseCase("depthwise 3×3 same", [2, 6, 5, 4], [3, 3, 4, 1], 1, "same"),
  depthwiseCase("depthwise 5×5 same", [1, 7, 6, 3], [5, 5, 3, 1], 1, "same"),
  depthwiseCase("depthwise 3×3 stride 2, odd size", [2, 7, 9, 3], [3, 3, 3, 1], 2, explicit1),
  depthwiseCase("depthwise multiplier 2", [1, 5, 5, 3], [3, 3, 3, 2], 1, "same"),
  {
    name: "batched matMul with transposed operands (BatchMatMul replaced)",
    grads: () => {
      const a = tf.tensor3d(values(2 * 5 * 3, 7), [2, 5, 3]);
      const b = tf.tensor3d(values(2 * 4 * 5, 8), [2, 4, 5]);
      const f = (av: tf.Tensor, bv: tf.Tensor) => tf.sum(tf.sin(tf.matMul(av, bv, true, true)));
      return [...tf.grads(f)([a, b]), tf.matMul(a, b, true, true)];
    },
  },
  {
    name: "gather (UnsortedSegmentSum), repeated indices",
    grads: () => {
      const table = tf.tensor2d(values(7 * 3, 5), [7, 3]);
      const indices = tf.tensor1d([0, 3, 3, 6, 0, 0, 2], "int32");
      const weights = tf.tensor2d(values(7 * 3, 6), [7, 3]);
      const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, indices), weights));
      return [tf.grad(f)(table)];
    },
  },
];

async function gradsOn(backend: BackendName, c: Case): Promise<Float32Array[]> {
  return runOn(backend, () => download(tf.tidy(c.grads)));
}

describe("wasm gradient kernels match the cpu backend", () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const reference = await gradsOn("cpu", c);
      const before = tf.memory().numTensors;
      const wasm = await gradsOn("wasm", c);
      expect(tf.memory().numTensors).toBe(before); // the op-built kernels leak nothing
      expect(wasm.length).toBe(reference.length);
      for (let i = 0; i < wasm.length; i++) {
        expect(scaledError(wasm[i], reference[i])).toBeLessThan(TOLERANCE);
      }
    });
  }
});
