import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { countGpuWork } from "../../bench/lib/gpu-work.ts";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import {
  GROUPED_POINTWISE,
  GROUPED_POINTWISE_GRAD,
  groupedPointwiseOp,
  groupedPointwiseReference,
} from "../../gpu-worker/src/ops/grouped-pointwise.ts";
import { download, scaledError, values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI), with the fused kernels
// selectBackend registers. Started once: a second start would make a new device; tests switch
// with tf.setBackend.
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);
await selectBackend("cpu");

type Pointwise = (x: tf.Tensor, weight: tf.Tensor3D) => tf.Tensor;
/** x's shape [..., G·d_in] and the weight's [G, d_in, d_out]. */
type Case = [number[], [number, number, number]];

/** x [shape], weight, and dy [..., G·d_out] from `seed`. */
function inputs([shape, weightShape]: Case, seed: number) {
  const [groups, , dOut] = weightShape;
  const dyShape = [...shape.slice(0, -1), groups * dOut];
  return {
    x: tf.tensor(values(tf.util.sizeFromShape(shape), seed), shape),
    weight: tf.tensor3d(values(tf.util.sizeFromShape(weightShape), seed + 1), weightShape),
    dy: tf.tensor(values(tf.util.sizeFromShape(dyShape), seed + 2), dyShape),
  };
}

/** [out, dx, dweight] of `pointwise` on the current backend, dy given. */
async function forwardAndGrads(pointwise: Pointwise, c: Case, seed: number) {
  const out = tf.tidy(() => {
    const { x, weight, dy } = inputs(c, seed);
    const f = (a: tf.Tensor, w: tf.Tensor) => pointwise(a, w as tf.Tensor3D);
    return [f(x, weight), ...tf.grads(f)([x, weight], dy)];
  });
  return download(out);
}

/** The plain composition's results on cpu, through tfjs's own autodiff. */
async function cpuReference(c: Case, seed: number) {
  await tf.setBackend("cpu");
  return forwardAndGrads(groupedPointwiseReference, c, seed);
}

const NAMES = ["out", "dx", "dweight"];

function expectClose(got: Float32Array[], want: Float32Array[], tolerance: number): void {
  const errors = Object.fromEntries(NAMES.map((name, i) => [name, scaledError(got[i], want[i])]));
  for (const name of NAMES) expect(errors[name], name).toBeLessThan(tolerance);
}

// Rows (B·H·W) 32, 64 and 105 (no multiple of a tile); d 8, the rectifier's 48 groups of 32.
const CASES: Case[] = [
  [
    [2, 4, 4, 3 * 8],
    [3, 8, 8],
  ],
  [
    [1, 8, 8, 48 * 32],
    [48, 32, 32],
  ],
  [
    [3, 5, 7, 6 * 5],
    [6, 5, 5],
  ],
];

describe("the grouped pointwise op on cpu (reference kernels)", () => {
  it("has a kernel and a gradient on every backend", () => {
    for (const backend of ["cpu", "wasm", "webgpu", "tensorflow"]) {
      expect(tf.getKernel(GROUPED_POINTWISE, backend), backend).toBeDefined();
      expect(tf.getKernel(GROUPED_POINTWISE_GRAD, backend), backend).toBeDefined();
    }
    expect(tf.getGradient(GROUPED_POINTWISE)).toBeDefined();
  });

  it.each(CASES)(
    "gives the composition's output and its autodiff gradients for %j, %j",
    async (...c) => {
      const want = await cpuReference(c, 11);
      const got = await forwardAndGrads(groupedPointwiseOp, c, 11);
      // The same ops in the same order: the forward is bit for bit today's.
      expect(got[0]).toEqual(want[0]);
      expectClose(got, want, 1e-6);
    },
  );

  it("rejects a weight that does not cover x's channels", () => {
    const x = tf.zeros([2, 12]);
    expect(() => groupedPointwiseOp(x, tf.zeros([3, 5, 4]) as tf.Tensor3D)).toThrow(/G·d_in/);
  });
});

describe("the grouped pointwise kernels on webgpu", () => {
  // Besides CASES: d = 64 (the widest the programs take), d_in ≠ d_out, rank 2, d = 1, and
  // d_in = 65, which falls back to the reference kernels.
  it.skipIf(!webgpu).each([
    ...CASES,
    [
      [2, 3, 3, 2 * 64],
      [2, 64, 64],
    ],
    [
      [2, 3, 5, 4 * 7],
      [4, 7, 12],
    ],
    [
      [70, 4 * 20],
      [4, 20, 3],
    ],
    [
      [3, 40, 5],
      [5, 1, 1],
    ],
    [
      [1, 2, 3, 65],
      [1, 65, 2],
    ],
  ] as Case[])("match the cpu reference for %j, %j", async (...c) => {
    const want = await cpuReference(c, 5);
    await tf.setBackend("webgpu");
    expectClose(await forwardAndGrads(groupedPointwiseOp, c, 5), want, 1e-5);
  });

  // 1100 groups × 60 tiles of 64 rows: the matmul dispatch passes WebGPU's 65 535 workgroups a
  // dimension and is folded, with surplus workgroups. Forward only: dx runs the same program,
  // and the partials pass is slow on a software adapter at d = 1.
  it.skipIf(!webgpu)("match it past 65 535 workgroups", async () => {
    const c: Case = [
      [60 * 64, 1100],
      [1100, 1, 1],
    ];
    const forward = async () => {
      const { x, weight, dy } = inputs(c, 9);
      const [out] = await download([groupedPointwiseOp(x, weight)]);
      tf.dispose([x, weight, dy]);
      return out;
    };
    await tf.setBackend("cpu");
    const want = await forward();
    await tf.setBackend("webgpu");
    expect(scaledError(await forward(), want)).toBeLessThan(1e-5);
  });

  // 32 768 rows of d = 4: slices of 30 rows, 18 to each of 61 blocks, the last one short.
  it.skipIf(!webgpu)("match it over many row blocks", async () => {
    const c: Case = [
      [32, 32, 32, 2 * 4],
      [2, 4, 4],
    ];
    const want = await cpuReference(c, 9);
    await tf.setBackend("webgpu");
    expectClose(await forwardAndGrads(groupedPointwiseOp, c, 9), want, 1e-5);
  });

  it.skipIf(!webgpu)("dispatch once forward and three times more for the gradient", async () => {
    await tf.setBackend("webgpu");
    const counts = async (batch: number) => {
      const { x, weight, dy } = inputs(
        [
          [batch, 8, 8, 48 * 32],
          [48, 32, 32],
        ],
        3,
      );
      const f = (a: tf.Tensor, w: tf.Tensor) => groupedPointwiseOp(a, w as tf.Tensor3D);
      const dispatches = async (fn: () => tf.Tensor[]) =>
        (await countGpuWork(async () => tf.dispose(fn()))).work.dispatches;
      const forward = await dispatches(() => [f(x, weight)]);
      const both = await dispatches(() => tf.grads(f)([x, weight], dy));
      tf.dispose([x, weight, dy]);
      return { forward, both };
    };
    const one = await counts(1);
    expect(one).toEqual({ forward: 1, both: 4 });
    expect(await counts(8)).toEqual(one);
  });
});
