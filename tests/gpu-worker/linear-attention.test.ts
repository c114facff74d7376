import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { dispatchesOf } from "../../bench/lib/gpu-work.ts";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { webgpuLinearAttentionKernels } from "../../gpu-worker/src/backends/webgpu/linear-attention.ts";
import {
  LINEAR_ATTENTION,
  LINEAR_ATTENTION_GRAD,
  linearAttentionOp,
  linearAttentionReference,
} from "../../gpu-worker/src/ops/linear-attention.ts";
import { scaledError, values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI). Started once: a second
// selectBackend("webgpu") would make a new device; tests switch with tf.setBackend.
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);
await selectBackend("cpu");

type Attention = (qkv: tf.Tensor4D, headDim: number) => tf.Tensor4D;

/**
 * qkv [shape] and dy [B,H,W,heads·d] from `seed`, in [-1, 1): ReLU masks about half of q and k.
 * `positive` puts qkv in [0, 1) instead, for heads of very few tokens: there a normaliser near 0
 * leaves the gradient to rounding noise, on every backend.
 */
function inputs(shape: number[], seed: number, positive = false) {
  const outShape = [...shape.slice(0, 3), shape[3] / 3];
  const qkv = values(tf.util.sizeFromShape(shape), seed).map((v) => (positive ? v / 2 + 0.5 : v));
  return {
    qkv: tf.tensor4d(qkv, shape as [number, number, number, number]),
    dy: tf.tensor(values(tf.util.sizeFromShape(outShape), seed + 1), outShape),
  };
}

/**
 * [out, dq, dk, dv] of `attention` on `backend`, the gradient of Σ out·dy, downloaded; dqkv is
 * cut into its roles, whose scales differ.
 */
async function forwardAndGrad(
  backend: string,
  attention: Attention,
  shape: number[],
  headDim: number,
  seed: number,
  positive = false,
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const { value, grad } = tf.tidy(() => {
    const { qkv, dy } = inputs(shape, seed, positive);
    const f = (x: tf.Tensor): tf.Tensor => attention(x as tf.Tensor4D, headDim);
    return tf.valueAndGrad(f)(qkv, dy);
  });
  const [b, h, w, channels] = shape;
  const roles = tf.split(tf.reshape(grad, [b, h, w, channels / (3 * headDim), 3, headDim]), 3, 4);
  const out = await Promise.all([value, ...roles].map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([value, grad, ...roles]);
  return out;
}

const NAMES = ["out", "dq", "dk", "dv"];

function expectClose(got: Float32Array[], want: Float32Array[], tolerance: number): void {
  const errors = NAMES.map((name, i) => [name, scaledError(got[i], want[i])] as const);
  for (const [name, error] of errors) expect(error, name).toBeLessThan(tolerance);
}

describe("the linear attention op on cpu (reference kernels)", () => {
  it("has a kernel and a gradient on every backend", () => {
    for (const backend of ["cpu", "wasm", "webgpu", "tensorflow"]) {
      expect(tf.getKernel(LINEAR_ATTENTION, backend), backend).toBeDefined();
      expect(tf.getKernel(LINEAR_ATTENTION_GRAD, backend), backend).toBeDefined();
    }
    expect(tf.getGradient(LINEAR_ATTENTION)).toBeDefined();
  });

  // d = 8 and 32 (the paper's); N a power of two and not (35).
  it.each([
    [[2, 4, 4, 3 * 2 * 8], 8],
    [[1, 8, 8, 3 * 16 * 32], 32],
    [[3, 5, 7, 3 * 3 * 8], 8],
  ])(
    "gives the composition's output and its autodiff gradient for %j, d = %i",
    async (shape, d) => {
      const want = await forwardAndGrad("cpu", linearAttentionReference, shape, d, 7);
      const got = await forwardAndGrad("cpu", linearAttentionOp, shape, d, 7);
      // The same ops in the same order: the forward is bit for bit attention.ts's.
      expect(got[0]).toEqual(want[0]);
      expectClose(got, want, 1e-6);
    },
  );

  it("refuses channels that are no whole heads", () => {
    expect(() => linearAttentionOp(tf.zeros([1, 2, 2, 20]), 8)).toThrow(/heads/);
  });
});

describe.skipIf(!webgpu)("the linear attention kernels on webgpu", () => {
  it("are the ones selectBackend registers", () => {
    for (const kernel of webgpuLinearAttentionKernels) {
      expect(tf.getKernel(kernel.kernelName, "webgpu")?.kernelFunc).toBe(kernel.kernelFunc);
    }
  });

  // d = 8, 32, 64 and an odd 5; N within one token tile, past one (d = 8: 128, d = 64: 16
  // tokens) and not a multiple of it; d = 80 takes the composition.
  it.each([
    [[2, 4, 4, 3 * 2 * 8], 8],
    [[1, 8, 8, 3 * 16 * 32], 32],
    [[3, 5, 7, 3 * 3 * 8], 8],
    [[1, 12, 13, 3 * 2 * 8], 8],
    [[2, 5, 5, 3 * 2 * 64], 64],
    [[2, 3, 7, 3 * 3 * 5], 5],
    [[1, 3, 3, 3 * 1 * 80], 80],
  ])("match the cpu reference for %j, d = %i", async (shape, d) => {
    const want = await forwardAndGrad("cpu", linearAttentionReference, shape, d, 5);
    expectClose(await forwardAndGrad("webgpu", linearAttentionOp, shape, d, 5), want, 1e-5);
  });

  // 65 600 (b, head)s: the reductions' dispatches, a workgroup each, are folded into 2-D.
  it("match it past 65 535 workgroups", async () => {
    const [shape, d] = [[16_400, 1, 2, 3 * 4 * 2], 2];
    const want = await forwardAndGrad("cpu", linearAttentionReference, shape, d, 3, true);
    expectClose(await forwardAndGrad("webgpu", linearAttentionOp, shape, d, 3, true), want, 1e-5);
  });

  it("dispatch twice forward and four times more for the gradient, whatever B", async () => {
    await tf.setBackend("webgpu");
    const counts = (batch: number) => {
      const { qkv, dy } = inputs([batch, 8, 8, 3 * 4 * 32], 3);
      const f = (x: tf.Tensor) => linearAttentionOp(x as tf.Tensor4D, 32);
      const forward = dispatchesOf(() => tf.dispose(f(qkv)));
      const both = dispatchesOf(() => tf.dispose(tf.grad(f)(qkv, dy)));
      tf.dispose([qkv, dy]);
      return { forward, both };
    };
    const one = counts(1);
    expect(one).toEqual({ forward: 2, both: 6 });
    expect(counts(8)).toEqual(one);
  });
});
