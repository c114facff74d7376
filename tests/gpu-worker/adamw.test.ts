import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { countGpuWork } from "../../bench/lib/gpu-work.ts";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import {
  adamwStep,
  createAdamW,
  disposeAdamW,
  momentsOf,
  setMoments,
  TORCH_ADAMW,
} from "../../gpu-worker/src/train/adamw.ts";
import { runOn, scaledError, values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI).
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);

type Run = { params: Float32Array[]; m: Float32Array[]; v: Float32Array[]; squares: number[] };
type CountedRun = Run & { dispatches: number[] };

/**
 * Three AdamW steps (lr 0.1, wd 0.01; the gradients scaled ×3 so that clipping to norm 1 bites)
 * over a group of tensors of these sizes; everything read back.
 */
async function threeSteps(sizes: number[], gpu = false): Promise<CountedRun> {
  const params = sizes.map((n, i) => tf.variable(tf.tensor1d(values(n, i + 1))));
  const opt = createAdamW([{ params, lr: 0.1, weightDecay: 0.01 }]);
  const squares: number[] = [];
  const dispatches: number[] = [];
  for (let step = 0; step < 3; step++) {
    const grads = sizes.map((n, i) => tf.mul(tf.tensor1d(values(n, 100 * step + i + 7)), 3));
    const update = async () => adamwStep(opt, [grads], 1);
    const [sum] = gpu
      ? await countGpuWork(update).then(({ result, work }) => {
          dispatches.push(work.dispatches);
          return result;
        })
      : await update();
    squares.push((await sum.data())[0]);
    tf.dispose([sum, ...grads]);
  }
  const { m, v } = momentsOf(opt.groups[0]);
  const read = (ts: tf.Tensor[]) => Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
  const out = {
    params: await read(params),
    m: await read(m),
    v: await read(v),
    squares,
    dispatches,
  };
  tf.dispose([...params, ...m, ...v]);
  disposeAdamW(opt);
  return out;
}

/** The same three steps in float64, tensor by tensor, as torch's clip_grad_norm_ + AdamW do. */
function plainSteps(sizes: number[]): Run {
  const { beta1, beta2, eps } = TORCH_ADAMW;
  const params = sizes.map((n, i) => Float64Array.from(values(n, i + 1)));
  const m = sizes.map((n) => new Float64Array(n));
  const v = sizes.map((n) => new Float64Array(n));
  const squares: number[] = [];
  for (let step = 0; step < 3; step++) {
    const grads = sizes.map((n, i) =>
      Float64Array.from(values(n, 100 * step + i + 7), (x) => 3 * x),
    );
    const sum = grads.reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0);
    squares.push(sum);
    const coef = Math.min(1, 1 / (Math.sqrt(sum) + 1e-6));
    const t = step + 1;
    sizes.forEach((n, j) => {
      for (let k = 0; k < n; k++) {
        const g = grads[j][k] * coef;
        params[j][k] *= 1 - 0.1 * 0.01;
        m[j][k] = beta1 * m[j][k] + (1 - beta1) * g;
        v[j][k] = beta2 * v[j][k] + (1 - beta2) * g * g;
        const denom = Math.sqrt(v[j][k]) / Math.sqrt(1 - beta2 ** t) + eps;
        params[j][k] -= ((0.1 / (1 - beta1 ** t)) * m[j][k]) / denom;
      }
    });
  }
  const f32 = (xs: Float64Array[]) => xs.map((x) => Float32Array.from(x));
  return { params: f32(params), m: f32(m), v: f32(v), squares };
}

function worstError(got: Run, want: Run): number {
  const pairs = (["params", "m", "v"] as const).flatMap((key) =>
    got[key].map((g, i) => scaledError(g, want[key][i])),
  );
  const squares = got.squares.map((s, i) => Math.abs(s - want.squares[i]) / want.squares[i]);
  return Math.max(...pairs, ...squares);
}

// The paper's rectifier has 46 parameter tensors; odd sizes, so no tile divides them.
const SIZES = Array.from({ length: 46 }, (_, i) => 1 + ((i * 37) % 101));

describe("AdamW over a flattened group (clip_grad_norm_ included)", () => {
  it("matches torch's per-tensor clipping and AdamW on cpu", async () => {
    const got = await runOn("cpu", () => threeSteps(SIZES));
    expect(worstError(got, plainSteps(SIZES))).toBeLessThan(2e-6);
  });

  it.skipIf(!webgpu)(
    "gives the cpu reference's update on webgpu, in a few dispatches",
    async () => {
      const want = await runOn("cpu", () => threeSteps(SIZES));
      const got = await runOn("webgpu", () => threeSteps(SIZES, true));
      expect(worstError(got, want)).toBeLessThan(2e-6);
      // The 46 gradients concatenated (8 dispatches: 7 inputs a dispatch), Σg² (2), the moments
      // (2), each parameter from its span (46): ~15 a tensor before.
      // (where a device binds more storage buffers a stage, fewer concatenations).
      expect(new Set(got.dispatches).size).toBe(1);
      expect(got.dispatches[0]).toBeLessThanOrEqual(58);
    },
  );

  it.skipIf(!webgpu)("updates a group larger than one dispatch dimension on webgpu", async () => {
    // 4.2M values: 65 625 workgroups of 64, over WebGPU's 65 535 per dimension.
    const sizes = [4_200_000, 3];
    const got = await runOn("webgpu", () => threeSteps(sizes));
    expect(worstError(got, plainSteps(sizes))).toBeLessThan(2e-6);
  });

  it("refuses gradients that do not match the group", async () => {
    await runOn("cpu", () => {
      const params = [tf.variable(tf.zeros([2]))];
      const opt = createAdamW([{ params, lr: 0.1, weightDecay: 0 }]);
      expect(() => adamwStep(opt, [[]], 1)).toThrow(/1 parameters, got 0 gradients/);
      tf.dispose(params);
      disposeAdamW(opt);
    });
  });

  it("refuses moments of another size, leaving the group's as they were", async () => {
    await runOn("cpu", async () => {
      const params = [tf.variable(tf.zeros([2])), tf.variable(tf.zeros([3]))];
      const opt = createAdamW([{ params, lr: 0.1, weightDecay: 0 }]);
      const [group] = opt.groups;
      const wrong = [tf.ones([2]), tf.ones([2])];
      expect(() => setMoments(group, wrong, wrong)).toThrow(
        /moments of 4,4 values for a group of 5/,
      );
      expect(Array.from(await group.m.data())).toEqual([0, 0, 0, 0, 0]);
      tf.dispose([...params, ...wrong]);
      disposeAdamW(opt);
    });
  });
});
