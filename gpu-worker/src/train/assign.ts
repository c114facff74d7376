/**
 * Which code each token takes during training (DESIGN.md step 4): the nearest one of its group,
 * ties to the lowest index. Two ways, chosen per run:
 *
 * - `exact`: the codebook is read back to the host and searched with the shared k-d tree
 *   (@revq/shared NearestCodeIndex), the very search encoding uses, so training and encoding
 *   agree bit for bit. Rebuilding the tree costs O(K log K) per group each step: right for the
 *   CPU backends and small codebooks, and what the parity tests use.
 * - `device`: the reference's own matrix-product form on the device, argmin_k |e_k|² − 2·x·e_k
 *   (|x|² is the same for every code and left out), a few groups at a time to bound memory.
 *   Nothing leaves the device but the ids. float32 rounding of the product can flip a near tie
 *   (relative gap below ~1e-6) as it can in PyTorch; exact ties (duplicate codes) give equal
 *   values and argMin takes the first. The choice for a GPU, where the host search would be the
 *   bottleneck of the paper's 512 × 16384 codebook.
 */

import { NearestCodeIndex } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { readCodebook, type TrainableQuantizer } from "./quantizer.ts";

export const ASSIGNMENTS = ["exact", "device"] as const;
export type Assignment = (typeof ASSIGNMENTS)[number];

/** Distance-matrix elements computed at once by the device path (256 MiB of float32). */
const DEVICE_CHUNK_ELEMENTS = 1 << 26;

/** Code ids of tokens (B·T, D) on the device, whose values the host also has: (B·T,). */
export type Assign = (tokens: tf.Tensor2D, host: Float32Array) => Promise<Uint32Array>;

/**
 * An assignment against the codebook as it is now (the exact search's index is built once here):
 * make a new one whenever the codebook changes.
 */
export async function assigner(method: Assignment, q: TrainableQuantizer): Promise<Assign> {
  if (method === "exact") {
    const index = new NearestCodeIndex(await readCodebook(q));
    return async (_tokens, host) => index.search(host, q.layout.tokens).ids;
  }
  return async (tokens) => {
    const ids = nearestOnDevice(q, tokens);
    const data = (await ids.data()) as Int32Array;
    ids.dispose();
    return new Uint32Array(data.buffer, data.byteOffset, data.length);
  };
}

/** One assignment with the current codebook. */
export async function assignCodes(
  method: Assignment,
  q: TrainableQuantizer,
  tokens: tf.Tensor2D,
  host: Float32Array,
): Promise<Uint32Array> {
  return (await assigner(method, q))(tokens, host);
}

/** (B·T, D) → (B·T,) int32 ids, computed group-chunk by group-chunk. */
function nearestOnDevice(q: TrainableQuantizer, tokens: tf.Tensor2D): tf.Tensor1D {
  const { groups, codeDim } = q.layout;
  const rows = tokens.shape[0] / groups; // N: tokens of each group in the batch
  const chunk = Math.max(1, Math.floor(DEVICE_CHUNK_ELEMENTS / (rows * q.codes)));
  return tf.tidy(() => {
    // Token i = (b·T + t) uses group t mod G = i mod G, since G divides T.
    const x = tf.transpose(tf.reshape(tokens, [rows, groups, codeDim]), [1, 0, 2]); // (G, N, D)
    const parts: tf.Tensor2D[] = [];
    for (let g = 0; g < groups; g += chunk) {
      const size = Math.min(chunk, groups - g);
      parts.push(
        tf.tidy(() => {
          const e = tf.slice(q.embeddings, [g, 0, 0], [size, -1, -1]); // (g, K, D)
          const xs = tf.slice(x, [g, 0, 0], [size, -1, -1]); // (g, N, D)
          const squared = tf.expandDims(tf.sum(tf.square(e), 2), 1); // (g, 1, K)
          const scores = tf.sub(squared, tf.mul(tf.matMul(xs, e, false, true), 2)); // (g, N, K)
          return tf.argMin(scores, 2) as tf.Tensor2D; // (g, N)
        }),
      );
    }
    const ids = parts.length === 1 ? parts[0] : tf.concat(parts, 0); // (G, N)
    return tf.reshape(tf.transpose(ids), [rows * groups]);
  });
}
