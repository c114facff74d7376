/**
 * The nearest code of each token, as one kernel (DESIGN.md step 4): token i of (N, D) searches
 * group i mod G of the codebook (G, K, D) and gets the ROW of its nearest code in the codebook
 * viewed as (G·K, D), ties to the lowest index. Returning rows, not per-group ids, lets the
 * caller gather the quantized tokens with no further arithmetic.
 *
 * Backends with a fused kernel (backends/webgpu/nearest-code.ts) register it under NEAREST_CODE;
 * everywhere else this module registers the reference composition below, so the op runs on every
 * backend. Not differentiable: the assignment is a constant of the training step.
 */

import * as tf from "@tensorflow/tfjs-core";
import { fromOps, registerReferenceKernel } from "../backends/op-kernels.ts";

export const NEAREST_CODE = "RevqNearestCode";

/** Distances one block of the reference holds at once (64 MiB of float32). */
const BLOCK_ELEMENTS = 1 << 24;

/** codebook (G, K, D), tokens (N, D) with token i in group i mod G → int32 rows (N,). */
export function nearestCodeRows(codebook: tf.Tensor3D, tokens: tf.Tensor2D): tf.Tensor1D {
  const [groups, , dim] = codebook.shape;
  if (codebook.dtype !== "float32" || tokens.dtype !== "float32") {
    throw new Error("nearestCodeRows: codebook and tokens must be float32");
  }
  if (tokens.rank !== 2 || tokens.shape[1] !== dim) {
    throw new Error(`nearestCodeRows: tokens ${tokens.shape} are not (N, ${dim})`);
  }
  if (tokens.shape[0] % groups !== 0) {
    throw new Error(`nearestCodeRows: ${tokens.shape[0]} tokens are no whole number of groups`);
  }
  return tf.engine().runKernel(NEAREST_CODE, { codebook, tokens }, {}) as tf.Tensor1D;
}

/**
 * The reference: blocks of (groups, tokens) of at most `blockElements` distances (tests make it
 * small), so that memory stays bounded at any batch or K.
 *
 * Distances in the matrix form |x|² − 2·x·e + |e|², as torch.cdist computes them at these sizes
 * (and so the reference's training): one batched matMul per block, fast on the CPU backends. The
 * fused WebGPU kernel sums (x − e)² instead; the two agree but for float32 rounding, which can
 * flip a near tie (tests compare such choices by distance).
 */
export function nearestCodeRowsReference(
  codebook: tf.Tensor3D,
  tokens: tf.Tensor2D,
  blockElements = BLOCK_ELEMENTS,
): tf.Tensor1D {
  const [groups, codes, dim] = codebook.shape;
  const perGroup = tokens.shape[0] / groups; // M: tokens of each group
  if (perGroup === 0) return tf.zeros([0], "int32");
  return tf.tidy(() => {
    // Token i = n·G + g is (n, g): grouped, it is (g, n), and x is (G, M, D).
    const x = tf.transpose(tf.reshape<tf.Rank.R3>(tokens, [perGroup, groups, dim]), [1, 0, 2]);
    const ids = blockwise(codebook, x, blockElements); // (G, M)
    const first = tf.reshape(tf.range(0, groups * codes, codes, "int32"), [groups, 1]); // (G, 1)
    return tf.reshape(tf.transpose(tf.add(ids, first)), [groups * perGroup]);
  });
}

/** Nearest code ids (G, M) of x (G, M, D), computed block by block. */
function blockwise(codebook: tf.Tensor3D, x: tf.Tensor3D, blockElements: number): tf.Tensor2D {
  const [groups, codes] = codebook.shape;
  const perGroup = x.shape[1];
  const groupStep = Math.max(1, Math.floor(blockElements / (perGroup * codes)));
  const tokenStep = Math.min(perGroup, Math.max(1, Math.floor(blockElements / codes)));
  const rows: tf.Tensor2D[] = [];
  for (let g = 0; g < groups; g += groupStep) {
    const size = Math.min(groupStep, groups - g);
    rows.push(
      tf.tidy(() => {
        const e = tf.slice(codebook, [g, 0, 0], [size, -1, -1]); // (g, K, D)
        const squaredCodes = tf.expandDims<tf.Tensor3D>(tf.sum(tf.square(e), 2), 1); // (g, 1, K)
        const parts: tf.Tensor2D[] = [];
        for (let n = 0; n < perGroup; n += tokenStep) {
          const m = Math.min(tokenStep, perGroup - n);
          const xs = tf.slice(x, [g, n, 0], [size, m, -1]); // (g, m, D)
          // argMin takes the first of equal minima on cpu, wasm and tensorflow; tfjs-webgpu's
          // may not (k = 64 over k = 1), but webgpu has the fused kernel.
          parts.push(tf.tidy(() => tf.argMin(squaredDistances(xs, e, squaredCodes), 2)));
        }
        return (parts.length === 1 ? parts[0] : tf.concat(parts, 1)) as tf.Tensor2D; // (g, M)
      }),
    );
  }
  return rows.length === 1 ? rows[0] : tf.concat(rows, 0);
}

/** x (g, m, D), e (g, K, D), |e|² (g, 1, K) → |x − e|², (g, m, K). */
function squaredDistances(x: tf.Tensor3D, e: tf.Tensor3D, squaredCodes: tf.Tensor3D): tf.Tensor3D {
  const squaredTokens = tf.sum(tf.square(x), 2, true); // (g, m, 1)
  const products = tf.matMul(x, e, false, true); // (g, m, K)
  return tf.add(tf.sub(squaredTokens, tf.mul(products, 2)), squaredCodes);
}

/** The reference as a kernel function, for any backend. */
export const nearestCodeReferenceKernel = fromOps((inputs) =>
  nearestCodeRowsReference(inputs.codebook as tf.Tensor3D, inputs.tokens as tf.Tensor2D),
);

registerReferenceKernel(NEAREST_CODE, nearestCodeReferenceKernel);
