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

/** Differences one block of the reference holds at once (64 MiB of float32 each). */
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
 * The reference: blocks of (groups, tokens) of at most `blockElements` differences x_d − e_kd
 * (tests make it small), so that memory stays bounded at any batch or K.
 *
 * It computes the exact squared distance Σ_d (x_d − e_kd)², not |e|² − 2·x·e: that is the sum
 * the encoder's search computes (@revq/shared nearestCodesExhaustive / NearestCodeIndex), so
 * training and encoding differ only by float32 rounding, with no cancellation where tokens lie far
 * from the origin. Its (g, m, K, D) differences cost D times a matMul's scores in memory: the
 * blocks are that much smaller.
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
  const [groups, codes, dim] = codebook.shape;
  const perGroup = x.shape[1];
  const groupStep = Math.max(1, Math.floor(blockElements / (perGroup * codes * dim)));
  const tokenStep = Math.min(perGroup, Math.max(1, Math.floor(blockElements / (codes * dim))));
  const rows: tf.Tensor2D[] = [];
  for (let g = 0; g < groups; g += groupStep) {
    const size = Math.min(groupStep, groups - g);
    rows.push(
      tf.tidy(() => {
        // e: (g, 1, K, D) against xs: (g, m, 1, D), m tokens of each of g groups.
        const e = tf.expandDims<tf.Tensor4D>(tf.slice(codebook, [g, 0, 0], [size, -1, -1]), 1);
        const parts: tf.Tensor2D[] = [];
        for (let n = 0; n < perGroup; n += tokenStep) {
          const m = Math.min(tokenStep, perGroup - n);
          const xs = tf.expandDims<tf.Tensor4D>(tf.slice(x, [g, n, 0], [size, m, -1]), 2);
          parts.push(tf.tidy(() => lowestArgMin(squaredDistances(e, xs))));
        }
        return parts.length === 1 ? parts[0] : tf.concat(parts, 1); // (g, M)
      }),
    );
  }
  return rows.length === 1 ? rows[0] : tf.concat(rows, 0);
}

/** e (g, 1, K, D), x (g, m, 1, D) → Σ_d (x_d − e_d)², (g, m, K). */
function squaredDistances(e: tf.Tensor4D, x: tf.Tensor4D): tf.Tensor3D {
  return tf.sum(tf.square(tf.sub(x, e)), 3); // (g, m, K, D) summed
}

/**
 * (g, m, K) → int32 (g, m): the lowest k of the minimum. Not tf.argMin: tfjs-webgpu's reduces
 * K by interleaved lanes and, on an exact tie, can return a higher index (k = 64 over k = 1).
 * A token with NaN equals no minimum; it gets code 0, as the fused kernels give.
 */
function lowestArgMin(distances: tf.Tensor3D): tf.Tensor2D {
  const codes = distances.shape[2];
  const nearest = tf.min(distances, 2, true); // (g, m, 1)
  const k = tf.range(0, codes, 1, "int32"); // (K,)
  const none = tf.scalar(codes, "int32");
  const lowest = tf.min(tf.where<tf.Tensor>(tf.equal(distances, nearest), k, none), 2);
  return tf.mod(lowest, none) as tf.Tensor2D;
}

/** The reference as a kernel function, for any backend. */
export const nearestCodeReferenceKernel = fromOps((inputs) =>
  nearestCodeRowsReference(inputs.codebook as tf.Tensor3D, inputs.tokens as tf.Tensor2D),
);

registerReferenceKernel(NEAREST_CODE, nearestCodeReferenceKernel);
