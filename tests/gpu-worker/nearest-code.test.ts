import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { countGpuWork } from "../../bench/lib/gpu-work.ts";
import { type BackendName, selectBackend } from "../../gpu-worker/src/backend.ts";
import { nearestCodeKernel } from "../../gpu-worker/src/backends/webgpu/nearest-code.ts";
import {
  NEAREST_CODE,
  nearestCodeRows,
  nearestCodeRowsReference,
} from "../../gpu-worker/src/ops/nearest-code.ts";
import { values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI).
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);
await selectBackend("cpu");

/** A codebook (G, K, D) and N tokens (N, D), token i in group i mod G. */
type Problem = { groups: number; codes: number; dim: number; count: number };
type Data = Problem & { codebook: Float32Array; tokens: Float32Array };

/** Uniform values in [-1, 1). */
function random(p: Problem, seed: number): Data {
  const codebook = values(p.groups * p.codes * p.dim, seed);
  return { ...p, codebook, tokens: values(p.count * p.dim, seed + 1) };
}

/**
 * Integer codes in [-8, 8] and tokens on a half-integer grid: every distance is exact in float32
 * on any backend, and equal distances (ties between distinct or duplicate codes) abound.
 */
function grid(p: Problem, seed: number): Data {
  const data = random(p, seed);
  return {
    ...data,
    codebook: data.codebook.map((v) => Math.round(v * 8)),
    tokens: data.tokens.map((v) => Math.round(v * 18) / 2),
  };
}

/** Codes K/2.. of each group repeat codes 0..K/2: the first copy must always win. */
function duplicated(data: Data): Data {
  const codebook = data.codebook.slice();
  const half = (data.codes / 2) * data.dim;
  for (let g = 0; g < data.groups; g++) {
    const base = g * data.codes * data.dim;
    codebook.copyWithin(base + half, base, base + half);
  }
  return { ...data, codebook };
}

/** Squared distance, in float64, of token i to codebook row `row`. */
function distance(data: Data, i: number, row: number): number {
  let sum = 0;
  for (let d = 0; d < data.dim; d++) {
    const diff = data.tokens[i * data.dim + d] - data.codebook[row * data.dim + d];
    sum += diff * diff;
  }
  return sum;
}

/** The brute-force answer: every code of the group in order, the first minimum. */
function bruteForce(data: Data): Int32Array {
  const rows = new Int32Array(data.count);
  for (let i = 0; i < data.count; i++) {
    const first = (i % data.groups) * data.codes;
    let best = Number.POSITIVE_INFINITY;
    for (let k = 0; k < data.codes; k++) {
      const d = distance(data, i, first + k);
      if (d < best) {
        best = d;
        rows[i] = first + k;
      }
    }
  }
  return rows;
}

/** Rows lie in each token's group, at the distance of `expected`'s within float32 rounding. */
function expectAsNear(data: Data, rows: Int32Array, expected: Int32Array): void {
  expect(rows.length).toBe(data.count);
  for (let i = 0; i < data.count; i++) {
    expect(Math.floor(rows[i] / data.codes)).toBe(i % data.groups);
    const best = distance(data, i, expected[i]);
    expect(distance(data, i, rows[i])).toBeLessThanOrEqual(best * (1 + 1e-5) + 1e-7);
  }
}

type Rows = (codebook: tf.Tensor3D, tokens: tf.Tensor2D) => tf.Tensor1D;

/** The rows `op` gives for `data` on `backend` (started already). */
async function rowsOn(backend: BackendName, data: Data, op: Rows = nearestCodeRows) {
  await selectBackend(backend);
  const codebook = tf.tensor3d(data.codebook, [data.groups, data.codes, data.dim]);
  const tokens = tf.tensor2d(data.tokens, [data.count, data.dim]);
  const rows = op(codebook, tokens);
  const out = (await rows.data()) as Int32Array;
  expect(rows.dtype).toBe("int32");
  tf.dispose([codebook, tokens, rows]);
  return out;
}

const SHAPES: Problem[] = [
  { groups: 3, codes: 1000, dim: 4, count: 3 * 7 },
  { groups: 1, codes: 4096, dim: 4, count: 37 },
  { groups: 4, codes: 700, dim: 8, count: 4 * 9 },
  { groups: 2, codes: 333, dim: 3, count: 2 * 5 },
  { groups: 2, codes: 500, dim: 6, count: 2 * 3 },
  { groups: 5, codes: 50, dim: 1, count: 5 * 4 },
  // One and two tokens per group: a group's codes spread over 256 and 128 lanes.
  { groups: 6, codes: 900, dim: 4, count: 6 },
  { groups: 2, codes: 257, dim: 2, count: 2 * 2 },
  // More than a workgroup's 256 tokens per group.
  { groups: 2, codes: 300, dim: 4, count: 2 * 300 },
];

describe("nearestCodeRows' reference composition (cpu)", () => {
  // The tie the fused kernel had to fix on webgpu: tfjs-webgpu's argMin says 64 here.
  it("keeps the lowest of tied codes, on cpu and wasm", async () => {
    const data = grid({ groups: 1, codes: 200, dim: 1, count: 1 }, 1);
    data.codebook.fill(5);
    data.codebook[1] = 0;
    data.codebook[64] = 0;
    data.tokens[0] = 0;
    for (const backend of ["cpu", "wasm"] as const) {
      expect(Array.from(await rowsOn(backend, data, nearestCodeRowsReference))).toEqual([1]);
    }
  });

  it("equals a brute-force search, ties to the lowest code", async () => {
    for (const [i, shape] of SHAPES.entries()) {
      const data = grid(shape, 10 + i);
      expect(Array.from(await rowsOn("cpu", data))).toEqual(Array.from(bruteForce(data)));
    }
  });

  it("finds the nearest code of float data", async () => {
    for (const [i, shape] of SHAPES.entries()) {
      const data = random(shape, 20 + i);
      expectAsNear(data, await rowsOn("cpu", data), bruteForce(data));
    }
  });

  it("takes the first of duplicate codes", async () => {
    const data = duplicated(random({ groups: 3, codes: 200, dim: 4, count: 3 * 20 }, 5));
    const rows = await rowsOn("cpu", data);
    for (const row of rows) expect(row % data.codes).toBeLessThan(data.codes / 2);
    expect(Array.from(rows)).toEqual(Array.from(bruteForce(data)));
  });

  it("gives the same rows block by block", async () => {
    const data = grid({ groups: 5, codes: 40, dim: 2, count: 5 * 7 }, 7);
    const expected = Array.from(bruteForce(data));
    // Differences per block, 80 per token: 100 holds one token of one group, 1200 two groups.
    for (const block of [100, 1200]) {
      const op: Rows = (c, t) => nearestCodeRowsReference(c, t, block);
      expect(Array.from(await rowsOn("cpu", data, op))).toEqual(expected);
    }
  });

  it("rejects tokens that are no whole number of groups", () => {
    const codebook = tf.zeros([3, 4, 2]) as tf.Tensor3D;
    const tokens = tf.zeros([4, 2]) as tf.Tensor2D;
    expect(() => nearestCodeRows(codebook, tokens)).toThrow(/whole number of groups/);
    tf.dispose([codebook, tokens]);
  });
});

describe.skipIf(!webgpu)("nearestCodeRows on webgpu", () => {
  describe("the fused kernel", () => {
    beforeAll(() => {
      if (tf.getKernel(NEAREST_CODE, "webgpu")) tf.unregisterKernel(NEAREST_CODE, "webgpu");
      tf.registerKernel(nearestCodeKernel);
    });

    it("gives the reference's rows where distances are exact, ties included", async () => {
      for (const [i, shape] of SHAPES.entries()) {
        const data = grid(shape, 30 + i);
        const expected = Array.from(await rowsOn("cpu", data));
        expect(Array.from(await rowsOn("webgpu", data))).toEqual(expected);
      }
    });

    it("finds codes as near as the reference's on float data", async () => {
      for (const [i, shape] of SHAPES.entries()) {
        const data = random(shape, 40 + i);
        expectAsNear(data, await rowsOn("webgpu", data), await rowsOn("cpu", data));
      }
    });

    it("takes the first of duplicate codes", async () => {
      const data = duplicated(random({ groups: 3, codes: 1000, dim: 4, count: 3 * 20 }, 6));
      const rows = await rowsOn("webgpu", data);
      for (const row of rows) expect(row % data.codes).toBeLessThan(data.codes / 2);
      expectAsNear(data, rows, bruteForce(data));
    });

    // The paper's largest group: 262 144 codes, 512 tiles of workgroup memory.
    it("searches one group of 262 144 codes", async () => {
      const data = random({ groups: 1, codes: 262_144, dim: 4, count: 5 }, 8);
      expectAsNear(data, await rowsOn("webgpu", data), bruteForce(data));
    });

    it("composes codes longer than a tile", async () => {
      const data = grid({ groups: 1, codes: 3, dim: 2100, count: 2 }, 9);
      expect(Array.from(await rowsOn("webgpu", data))).toEqual(Array.from(bruteForce(data)));
    });

    it("makes one dispatch whatever the batch", async () => {
      const counts = [];
      for (const batch of [1, 16]) {
        const data = random({ groups: 8, codes: 100, dim: 4, count: 8 * batch }, batch);
        const { work, result } = await countGpuWork(() => rowsOn("webgpu", data));
        counts.push(work.dispatches);
        expectAsNear(data, result, bruteForce(data));
      }
      expect(counts).toEqual([1, 1]);
    });
  });
});
