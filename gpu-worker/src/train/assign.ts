/**
 * Which code each token takes during training (DESIGN.md step 4): the nearest one of its group,
 * ties to the lowest index. Two ways, chosen per run:
 *
 * - `exact`: the codebook is read back to the host and searched with the shared k-d tree
 *   (@revq/shared NearestCodeIndex), the very search encoding uses, so training and encoding
 *   agree bit for bit. Rebuilding the tree costs O(K log K) per group each step: right for the
 *   CPU backends and small codebooks, and what the parity tests use.
 * - `device`: the fused nearest-code op on the device (ops/nearest-code.ts: the exact squared
 *   distance, ties to the lowest index; one dispatch on webgpu). Nothing leaves the device: the
 *   rows it gives feed the gather and the usage counts directly. float32 rounding can flip a
 *   near tie (relative gap below ~1e-6) against the exact search, as it can in PyTorch. The
 *   choice for a GPU, where the host search would be the bottleneck of the paper's 512 × 16384
 *   codebook.
 */

import { type Assignment, NearestCodeIndex } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { nearestCodeRows } from "../ops/nearest-code.ts";
import { codeRows, readCodebook, type TrainableQuantizer } from "./quantizer.ts";

/**
 * The codebook row, (t mod G)·K + id, of each of tokens (B·T, D), whose values the host also
 * has: int32 (B·T,) on the device.
 */
export type Assign = (tokens: tf.Tensor2D, host: Float32Array) => tf.Tensor1D;

/**
 * An assignment against the codebook as it is now (the exact search's index is built once here):
 * make a new one whenever the codebook changes.
 */
export async function assigner(method: Assignment, q: TrainableQuantizer): Promise<Assign> {
  if (method === "exact") {
    const index = new NearestCodeIndex(await readCodebook(q));
    return (_tokens, host) => tf.tensor1d(codeRows(q, index.search(host, q.layout.tokens).ids));
  }
  return (tokens) => nearestCodeRows(q.embeddings, tokens);
}

/** Each token's code id in its group, (B·T,), on the host: one assignment read back. */
export async function assignCodes(
  method: Assignment,
  q: TrainableQuantizer,
  tokens: tf.Tensor2D,
  host: Float32Array,
): Promise<Uint32Array> {
  const rows = (await assigner(method, q))(tokens, host);
  const data = (await rows.data()) as Int32Array;
  rows.dispose();
  return Uint32Array.from(data, (row) => row % q.codes);
}
