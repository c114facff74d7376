import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { dispatchesOf } from "../../bench/lib/gpu-work.ts";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { rmsNormGradKernel, rmsNormKernel } from "../../gpu-worker/src/backends/webgpu/rms-norm.ts";
import {
  RMS_NORM,
  RMS_NORM_GRAD,
  rmsNormOp,
  rmsNormReference,
} from "../../gpu-worker/src/ops/rms-norm.ts";
import { download, scaledError, values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI).
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);

const EPS = 1e-6;
type Norm = (
  x: tf.Tensor,
  weight: tf.Tensor1D,
  bias: tf.Tensor1D,
  eps: number,
  residual?: tf.Tensor,
) => tf.Tensor;

/** The inputs of one case: x, residual and dy [shape], weight and bias [C], from `seed`. */
function inputs(shape: number[], seed: number) {
  const size = tf.util.sizeFromShape(shape);
  const channels = shape[shape.length - 1];
  return {
    x: tf.tensor(values(size, seed), shape),
    weight: tf.tensor1d(values(channels, seed + 1)),
    bias: tf.tensor1d(values(channels, seed + 2)),
    dy: tf.tensor(values(size, seed + 3), shape),
    residual: tf.tensor(values(size, seed + 4), shape),
  };
}

/**
 * [y, dx, dweight, dbias] of `norm` on the current backend, dy given (no ones to fill), and
 * dresidual after them when the case adds one.
 */
async function forwardAndGrads(norm: Norm, shape: number[], seed: number, withResidual = false) {
  const out = tf.tidy(() => {
    const { x, weight, bias, dy, residual } = inputs(shape, seed);
    const f = (a: tf.Tensor, w: tf.Tensor, b: tf.Tensor, r?: tf.Tensor) =>
      norm(a, w as tf.Tensor1D, b as tf.Tensor1D, EPS, r);
    const args = withResidual ? [x, weight, bias, residual] : [x, weight, bias];
    return [f(...(args as [tf.Tensor, tf.Tensor, tf.Tensor])), ...tf.grads(f)(args, dy)];
  });
  return download(out);
}

/** The plain composition's results on cpu, through tfjs's own autodiff. */
async function cpuReference(shape: number[], seed: number, withResidual = false) {
  await selectBackend("cpu");
  return forwardAndGrads(rmsNormReference, shape, seed, withResidual);
}

const NAMES = ["y", "dx", "dweight", "dbias", "dresidual"];

function expectClose(got: Float32Array[], want: Float32Array[], tolerance: number): void {
  expect(got.length).toBe(want.length);
  const names = NAMES.slice(0, want.length);
  const errors = Object.fromEntries(names.map((name, i) => [name, scaledError(got[i], want[i])]));
  for (const name of names) expect(errors[name], name).toBeLessThan(tolerance);
}

/** Makes this file's webgpu kernels the ones webgpu runs (startWebgpu does not wire them yet). */
function useWebgpuKernels(): void {
  for (const kernel of [rmsNormKernel, rmsNormGradKernel]) {
    if (tf.getKernel(kernel.kernelName, "webgpu")) tf.unregisterKernel(kernel.kernelName, "webgpu");
    tf.registerKernel(kernel);
  }
}

describe("the RMSNorm op on cpu (reference kernels)", () => {
  it("has a kernel and a gradient on every backend", () => {
    for (const backend of ["cpu", "wasm", "webgpu", "tensorflow"]) {
      expect(tf.getKernel(RMS_NORM, backend), backend).toBeDefined();
      expect(tf.getKernel(RMS_NORM_GRAD, backend), backend).toBeDefined();
    }
    expect(tf.getGradient(RMS_NORM)).toBeDefined();
  });

  it.each([[[2, 3, 5, 7]], [[1, 4, 4, 64]], [[6, 9]]])(
    "gives the composition's output and its autodiff gradients for %j",
    async (shape) => {
      const want = await cpuReference(shape, 11);
      const got = await forwardAndGrads(rmsNormOp, shape, 11);
      // The same ops in the same order: the forward is bit for bit today's.
      expect(got[0]).toEqual(want[0]);
      expectClose(got, want, 1e-6);
    },
  );

  it("adds a residual in the same op, whose gradient is dy", async () => {
    const shape = [2, 3, 5, 7];
    const want = await cpuReference(shape, 13, true);
    const got = await forwardAndGrads(rmsNormOp, shape, 13, true);
    expect(got).toHaveLength(5);
    expect(got[0]).toEqual(want[0]);
    expectClose(got, want, 1e-6);
    const dy = await download([tf.tidy(() => inputs(shape, 13).dy)]);
    expect(got[4]).toEqual(dy[0]);
  });

  it("refuses a residual of another shape", () => {
    const { x, weight, bias } = inputs([2, 4], 1);
    expect(() => rmsNormOp(x, weight, bias, EPS, tf.zeros([4, 2]))).toThrow(/residual \[4,2\]/);
  });
});

describe("the RMSNorm kernels on webgpu", () => {
  // C below, at, and above one row's 256 invocations, and not multiples of them; rows past one
  // block of 32 and not a multiple of it; rank 2.
  it
    .skipIf(!webgpu)
    .each([
      [[2, 3, 5, 7]],
      [[1, 8, 8, 32]],
      [[3, 4, 4, 512]],
      [[1, 2, 2, 1030]],
      [[2, 5, 7, 48]],
      [[70, 3]],
    ])("match the cpu reference for %j", async (shape) => {
    const want = await cpuReference(shape, 5);
    await selectBackend("webgpu");
    useWebgpuKernels();
    expectClose(await forwardAndGrads(rmsNormOp, shape, 5), want, 1e-5);
  });

  it.skipIf(!webgpu).each([[[2, 5, 7, 48]], [[1, 2, 2, 1030]]])(
    "match it with a residual for %j",
    async (shape) => {
      const want = await cpuReference(shape, 7, true);
      await selectBackend("webgpu");
      useWebgpuKernels();
      expectClose(await forwardAndGrads(rmsNormOp, shape, 7, true), want, 1e-5);
    },
  );

  // 70 000 rows: the row dispatches pass WebGPU's 65 535 workgroups a dimension and are folded.
  it.skipIf(!webgpu)("match it past 65 535 rows", async () => {
    const shape = [70_000, 4];
    const want = await cpuReference(shape, 9);
    await selectBackend("webgpu");
    useWebgpuKernels();
    expectClose(await forwardAndGrads(rmsNormOp, shape, 9), want, 1e-5);
  });

  it.skipIf(!webgpu)("dispatch once forward and four times more for the gradient", async () => {
    await selectBackend("webgpu");
    useWebgpuKernels();
    const counts = (batch: number, withResidual: boolean) => {
      const { x, weight, bias, dy, residual } = inputs([batch, 4, 4, 32], 3);
      const f = (a: tf.Tensor, w: tf.Tensor, b: tf.Tensor, r?: tf.Tensor) =>
        rmsNormOp(a, w as tf.Tensor1D, b as tf.Tensor1D, EPS, r);
      const args = withResidual ? [x, weight, bias, residual] : [x, weight, bias];
      const forward = dispatchesOf(() =>
        tf.dispose(f(...(args as [tf.Tensor, tf.Tensor, tf.Tensor]))),
      );
      const both = dispatchesOf(() => tf.dispose(tf.grads(f)(args, dy)));
      tf.dispose([x, weight, bias, dy, residual]);
      return { forward, both };
    };
    const one = counts(1, false);
    expect(one).toEqual({ forward: 1, both: 5 });
    expect(counts(8, false)).toEqual(one);
    // The residual costs no dispatch: its gradient is dy itself.
    expect(counts(1, true)).toEqual(one);
  });
});
