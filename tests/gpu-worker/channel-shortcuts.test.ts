import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { dispatchesOf } from "../../bench/lib/gpu-work.ts";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import {
  CHANNEL_MEANS,
  CHANNEL_REPEATS,
  channelMeansOp,
  channelRepeatsOp,
  type Space,
} from "../../gpu-worker/src/ops/channel-shortcuts.ts";
import { download, scaledError, values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI).
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);

type Shape = [number, number, number, number];
type Case = { op: "means" | "repeats"; x: Shape; space: Space; channels: number };

const outShape = ({ op, x: [b, h, w], space, channels }: Case): Shape =>
  op === "means" ? [b, h / space, w / space, channels] : [b, h * space, w * space, channels];

/**
 * The definition in plain loops: pixel-unshuffle puts x's channel c at (s·h + dy, s·w + dx) into
 * channel c·s² + dy·s + dx; channel means average runs of g of those; channel repeats are the
 * adjoint arrangement (each x channel r times in a row, then pixel-shuffled).
 */
function definition(c: Case, x: Float32Array): Float32Array {
  const [b, h, w, cx] = c.op === "means" ? c.x : outShape(c);
  const [, oh, ow, oc] = c.op === "means" ? outShape(c) : c.x;
  const s = c.space;
  const unshuffled = new Float32Array(b * oh * ow * s * s * cx);
  const at = (n: number, i: number, j: number, k: number) => ((n * h + i) * w + j) * cx + k;
  const wide = s * s * cx;
  for (let n = 0; n < b; n++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let k = 0; k < cx; k++)
          for (let dy = 0; dy < s; dy++)
            for (let dx = 0; dx < s; dx++) {
              const u = k * s * s + dy * s + dx;
              unshuffled[((n * oh + i) * ow + j) * wide + u] = at(n, s * i + dy, s * j + dx, k);
            }
  // unshuffled holds, for each wide channel, the flat position in the big-side tensor.
  if (c.op === "means") {
    const g = wide / oc;
    const out = new Float32Array(b * oh * ow * oc);
    for (let p = 0; p < out.length; p++) {
      let total = 0;
      for (let k = 0; k < g; k++) total += x[unshuffled[p * g + k]];
      out[p] = total / g;
    }
    return out;
  }
  const r = wide / oc;
  const out = new Float32Array(b * h * w * cx);
  for (let q = 0; q < unshuffled.length; q++) out[unshuffled[q]] = x[Math.floor(q / r)];
  return out;
}

const CASES: Case[] = [
  { op: "means", x: [2, 6, 4, 3], space: 2, channels: 4 },
  { op: "means", x: [1, 4, 4, 8], space: 2, channels: 32 },
  { op: "means", x: [1, 2, 2, 16], space: 2, channels: 2 },
  { op: "means", x: [2, 3, 5, 12], space: 1, channels: 4 },
  { op: "repeats", x: [2, 3, 2, 4], space: 2, channels: 3 },
  { op: "repeats", x: [1, 3, 3, 5], space: 2, channels: 5 },
  { op: "repeats", x: [1, 2, 2, 8], space: 2, channels: 2 },
  { op: "repeats", x: [2, 3, 5, 4], space: 1, channels: 12 },
];

const opOf = (c: Case) => (c.op === "means" ? channelMeansOp : channelRepeatsOp);

/** [y, dx, dresidual] on the current backend through `call`, with a residual and dy given. */
async function forwardAndGrads(
  c: Case,
  call: (x: tf.Tensor4D, residual: tf.Tensor4D) => tf.Tensor4D,
) {
  const out = outShape(c);
  const size = tf.util.sizeFromShape(out);
  return download(
    tf.tidy(() => {
      const x = tf.tensor(values(tf.util.sizeFromShape(c.x), 3), c.x) as tf.Tensor4D;
      const residual = tf.tensor(values(size, 4), out) as tf.Tensor4D;
      const dy = tf.tensor(values(size, 5), out);
      const f = (a: tf.Tensor, r: tf.Tensor) => call(a as tf.Tensor4D, r as tf.Tensor4D);
      return [f(x, residual), ...tf.grads(f)([x, residual], dy)];
    }),
  );
}

const viaOp = (c: Case) => (x: tf.Tensor4D, r: tf.Tensor4D) => opOf(c)(x, c.space, c.channels, r);
const viaKernel = (c: Case) => (x: tf.Tensor4D, residual: tf.Tensor4D) =>
  tf.engine().runKernel(
    c.op === "means" ? CHANNEL_MEANS : CHANNEL_REPEATS,
    { x, residual },
    {
      space: c.space,
      channels: c.channels,
    },
  ) as tf.Tensor4D;

describe("the channel shortcut ops on cpu (reference kernels)", () => {
  it("have a kernel and a gradient on every backend", () => {
    for (const name of [CHANNEL_MEANS, CHANNEL_REPEATS]) {
      for (const backend of ["cpu", "wasm", "webgpu", "tensorflow"]) {
        expect(tf.getKernel(name, backend), `${name} ${backend}`).toBeDefined();
      }
      expect(tf.getGradient(name)).toBeDefined();
    }
  });

  it.each(CASES)("compute the definition: $op of $x, s = $space, to $channels", async (c) => {
    await selectBackend("cpu");
    const x = values(tf.util.sizeFromShape(c.x), 3);
    const want = definition(c, x);
    const [got] = await download([
      tf.tidy(() => opOf(c)(tf.tensor(x, c.x) as tf.Tensor4D, c.space, c.channels)),
    ]);
    expect(scaledError(got, want)).toBeLessThan(1e-6);
  });

  // The registered gradients (each op's adjoint, scaled) against tfjs's autodiff of the plain
  // composition, which the op runs where there is no fast kernel.
  it.each(CASES)("differentiate as the composition: $op of $x to $channels", async (c) => {
    await selectBackend("cpu");
    const want = await forwardAndGrads(c, viaOp(c));
    const got = await forwardAndGrads(c, viaKernel(c));
    for (let i = 0; i < 3; i++)
      expect(scaledError(got[i], want[i]), `output ${i}`).toBeLessThan(1e-6);
  });

  it("refuse shapes that do not divide and residuals of another shape", () => {
    const x = tf.zeros([1, 3, 4, 6]) as tf.Tensor4D;
    expect(() => channelMeansOp(x, 2, 6)).toThrow(/does not average/);
    expect(() => channelMeansOp(x, 1, 4)).toThrow(/does not average/);
    expect(() => channelRepeatsOp(x, 1, 8)).toThrow(/does not repeat/);
    expect(() => channelRepeatsOp(x, 2, 6, tf.zeros([1, 6, 8, 3]) as tf.Tensor4D)).toThrow(
      /residual \[1,6,8,3\] is not the output's \[1,6,8,6\]/,
    );
  });
});

describe("the channel shortcut kernels on webgpu", () => {
  it.skipIf(!webgpu).each(CASES)(
    "match the cpu reference: $op of $x, s = $space, to $channels",
    async (c) => {
      await selectBackend("cpu");
      const want = await forwardAndGrads(c, viaOp(c));
      await selectBackend("webgpu");
      const got = await forwardAndGrads(c, viaOp(c));
      for (let i = 0; i < 3; i++) {
        expect(scaledError(got[i], want[i]), `output ${i}`).toBeLessThan(1e-6);
      }
    },
  );

  // 4.3 M outputs: past 65 535 workgroups of 64, so the dispatch is folded.
  it.skipIf(!webgpu)("match it past 65 535 workgroups", async () => {
    const c: Case = { op: "means", x: [1, 128, 130, 256], space: 2, channels: 1024 };
    const x = values(tf.util.sizeFromShape(c.x), 8);
    await selectBackend("webgpu");
    const [got] = await download([
      tf.tidy(() => channelMeansOp(tf.tensor(x, c.x) as tf.Tensor4D, 2, 1024)),
    ]);
    expect(scaledError(got, definition(c, x))).toBe(0);
  });

  it.skipIf(!webgpu)("dispatch once, with or without the residual", async () => {
    await selectBackend("webgpu");
    const x = tf.ones([2, 4, 4, 8]) as tf.Tensor4D;
    const small = tf.ones([2, 2, 2, 16]) as tf.Tensor4D;
    const big = tf.ones([2, 8, 8, 4]) as tf.Tensor4D;
    expect(dispatchesOf(() => tf.dispose(channelMeansOp(x, 2, 16)))).toBe(1);
    expect(dispatchesOf(() => tf.dispose(channelMeansOp(x, 2, 16, small)))).toBe(1);
    expect(dispatchesOf(() => tf.dispose(channelRepeatsOp(x, 2, 4, big)))).toBe(1);
    expect(dispatchesOf(() => tf.dispose(channelRepeatsOp(x, 1, 16)))).toBe(1);
    tf.dispose([x, small, big]);
  });
});
