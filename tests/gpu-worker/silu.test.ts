import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { dispatchesOf } from "../../bench/lib/gpu-work.ts";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { webgpuSiluKernels } from "../../gpu-worker/src/backends/webgpu/silu.ts";
import {
  siluGluOp,
  siluGluReference,
  siluOp,
  siluReference,
} from "../../gpu-worker/src/ops/silu.ts";
import { scaledError, values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI). Started once: a second
// selectBackend("webgpu") would make a new device; tests switch with tf.setBackend.
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);
await selectBackend("cpu");

type Op = (x: tf.Tensor) => tf.Tensor;
const OPS: Record<string, { op: Op; reference: Op }> = {
  silu: { op: siluOp, reference: siluReference },
  glu: { op: siluGluOp, reference: siluGluReference },
};

const EXTREMES = [80, -80, 1000, -1000, 0, -0, 20, -20, 1e-3, -1e-3, 5, -5];

/**
 * Deterministic values: seed 0 gives every pair of EXTREMES (so each meets each other as a and
 * as gate), repeated; others give values · 6 in [-6, 6), the whole curve of sigmoid, repeating
 * with a prime period (an index off by anything but a multiple of it reads another value).
 */
function input(shape: number[], seed: number): Float32Array {
  const size = tf.util.sizeFromShape(shape);
  const period = seed > 0 ? values(Math.min(size, 100_003), seed).map((v) => v * 6) : pairs();
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += period.length) out.set(period.subarray(0, size - i), i);
  return out;
}

function pairs(): Float32Array {
  return Float32Array.from(EXTREMES.flatMap((a) => EXTREMES.flatMap((b) => [a, b])));
}

/**
 * [f(x), dx] from the formulas in float64, for sizes where tfjs-cpu's autodiff of the
 * composition takes many seconds: silu(x) = x·s, silu'(x) = s·(1 + x·(1 − s)), s = sigmoid(x).
 */
function formulas(name: string, shape: number[], seed: number): [Float32Array, Float32Array] {
  const x = input(shape, seed);
  const dy = input(outputShape(name, shape), seed + 1);
  return name === "glu" ? gluFormulas(x, dy, shape[shape.length - 1] / 2) : siluFormulas(x, dy);
}

function siluFormulas(x: Float32Array, dy: Float32Array): [Float32Array, Float32Array] {
  const out = new Float32Array(x.length);
  const dx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const s = 1 / (1 + Math.exp(-x[i]));
    out[i] = x[i] * s;
    dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
  }
  return [out, dx];
}

/** Output i = (row, col) of [rows, H] reads a = x[row, col] and gate = x[row, H + col]. */
function gluFormulas(x: Float32Array, dy: Float32Array, H: number): [Float32Array, Float32Array] {
  const out = new Float32Array(dy.length);
  const dx = new Float32Array(x.length);
  for (let i = 0; i < dy.length; i++) {
    const a = i + Math.floor(i / H) * H;
    const gate = x[a + H];
    const s = 1 / (1 + Math.exp(-gate));
    out[i] = x[a] * gate * s;
    dx[a] = dy[i] * gate * s;
    dx[a + H] = dy[i] * x[a] * s * (1 + gate * (1 - s));
  }
  return [out, dx];
}

/** The op's output shape for input `shape`: the gate halves the last axis. */
function outputShape(name: string, shape: number[]): number[] {
  return name === "glu" ? [...shape.slice(0, -1), shape[shape.length - 1] / 2] : shape;
}

/** [f(x), the gradient of Σ f(x)·dy] of op `name` (or its reference) on `backend`, downloaded. */
async function forwardAndGrad(
  backend: string,
  name: string,
  which: "op" | "reference",
  shape: number[],
  seed: number,
): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const f = OPS[name][which];
  const dyShape = outputShape(name, shape);
  const { value, grad } = tf.tidy(() =>
    tf.valueAndGrad(f)(
      tf.tensor(input(shape, seed), shape),
      tf.tensor(input(dyShape, seed + 1), dyShape),
    ),
  );
  const out = [(await value.data()) as Float32Array, (await grad.data()) as Float32Array];
  tf.dispose([value, grad]);
  return out as [Float32Array, Float32Array];
}

describe("silu and the GLU gate on cpu (reference kernels)", () => {
  const cases: [string, number[]][] = [
    ["silu", [2, 3, 5, 7]],
    ["silu", [6]],
    ["glu", [2, 3, 5, 14]],
    ["glu", [3, 2]],
  ];
  it.each(cases)(
    "%s of %j equals the composition and its autodiff gradient",
    async (name, shape) => {
      const [out, dx] = await forwardAndGrad("cpu", name, "op", shape, 1);
      const [expected, expectedDx] = await forwardAndGrad("cpu", name, "reference", shape, 1);
      expect(out).toEqual(expected);
      expect(scaledError(dx, expectedDx)).toBeLessThan(1e-6);
    },
  );

  it("trains through variableGrads", async () => {
    await tf.setBackend("cpu");
    const x = tf.variable(tf.tensor(input([4, 8], 3), [4, 8]));
    const w = tf.tensor(input([4, 4], 4), [4, 4]);
    const loss = (glu: Op, silu: Op) => () => tf.sum(tf.mul(glu(silu(x)), w)) as tf.Scalar;
    const got = tf.variableGrads(loss(siluGluOp, siluOp));
    const expected = tf.variableGrads(loss(siluGluReference, siluReference));
    expect((await got.value.data())[0]).toBeCloseTo((await expected.value.data())[0], 4);
    const [dx, expectedDx] = await Promise.all(
      [got.grads[x.name], expected.grads[x.name]].map((g) => g.data() as Promise<Float32Array>),
    );
    expect(scaledError(dx, expectedDx)).toBeLessThan(1e-6);
    tf.dispose([x, w, got.value, expected.value]);
    tf.dispose([...Object.values(got.grads), ...Object.values(expected.grads)]);
  });

  it("refuses an odd gate axis and integers", () => {
    expect(() => siluGluOp(tf.zeros([2, 3]))).toThrow(/even/);
    expect(() => siluOp(tf.zeros([2], "int32"))).toThrow(/float32/);
  });
});

describe.skipIf(!webgpu)("silu and the GLU gate on webgpu (one dispatch each)", () => {
  beforeAll(() => {
    for (const kernel of webgpuSiluKernels) {
      if (tf.getKernel(kernel.kernelName, "webgpu")) {
        tf.unregisterKernel(kernel.kernelName, "webgpu");
      }
      tf.registerKernel(kernel);
    }
  });

  // Scalar and vec4 layouts: the size, or the gate's width H, a multiple of 4 or not.
  const cases: [string, number[]][] = [
    ["silu", [2, 3, 5, 7]],
    ["silu", [1, 8, 8, 2048]],
    ["glu", [2, 3, 5, 14]],
    ["glu", [1, 8, 8, 2048]],
  ];
  it.each(cases)("%s of %j matches tfjs-cpu's autodiff of the composition", async (name, shape) => {
    const [out, dx] = await forwardAndGrad("webgpu", name, "op", shape, 5);
    const [expected, expectedDx] = await forwardAndGrad("cpu", name, "reference", shape, 5);
    expect(scaledError(out, expected)).toBeLessThan(1e-5);
    expect(scaledError(dx, expectedDx)).toBeLessThan(1e-5);
  });

  // Past 65535 workgroups of 64 threads, runWebGPUProgram folds the dispatch into a square.
  const large: [string, number[]][] = [
    ["silu", [2049, 2049]], // 4.2M threads of 1 value: folded
    ["glu", [2048, 4098]], // H = 2049: 4.2M threads of 1 value, folded
  ];
  it.each(large)("%s of %j matches the formulas", async (name, shape) => {
    const [out, dx] = await forwardAndGrad("webgpu", name, "op", shape, 5);
    const [expected, expectedDx] = formulas(name, shape, 5);
    expect(scaledError(out, expected)).toBeLessThan(1e-5);
    expect(scaledError(dx, expectedDx)).toBeLessThan(1e-5);
  });

  // Each in the vec4 and the scalar layout.
  const extremes: [string, number[]][] = [
    ["silu", [288]],
    ["silu", [7, 41]],
    ["glu", [12, 24]],
    ["glu", [144, 2]],
  ];
  it.each(extremes)("%s of %j is finite and matches at ±80, ±1000 and 0", async (name, shape) => {
    const [out, dx] = await forwardAndGrad("webgpu", name, "op", shape, 0);
    const [expected, expectedDx] = await forwardAndGrad("cpu", name, "reference", shape, 0);
    expect([...out, ...dx].every(Number.isFinite)).toBe(true);
    expect(scaledError(out, expected)).toBeLessThan(1e-6);
    expect(scaledError(dx, expectedDx)).toBeLessThan(1e-6);
  });

  it.each(["silu", "glu"])("%s takes 1 dispatch forward, 2 with its gradient", async (name) => {
    await tf.setBackend("webgpu");
    const { op, reference } = OPS[name];
    const x = tf.tensor(input([2, 8, 8, 64], 8), [2, 8, 8, 64]);
    const dy = tf.ones(outputShape(name, x.shape));
    const both = (f: Op) => () => {
      const { value, grad } = tf.valueAndGrad(f)(x, dy);
      return [value, grad];
    };
    expect(dispatchesOf(() => tf.dispose(op(x)))).toBe(1);
    expect(dispatchesOf(() => tf.dispose(both(op)()))).toBe(2);
    // The compositions: silu 2 forward, 8 with the gradient; the gate 5 and 14.
    expect(dispatchesOf(() => tf.dispose(both(reference)()))).toBeGreaterThan(2);
    tf.dispose([x, dy]);
  });
});
