/**
 * The trainable quantizer (DESIGN.md steps 3, 4, 6): G codebooks of K codes of D values held as
 * one tfjs variable (G, K, D), and the gather that replaces each token by its assigned code. The
 * gather is the quantizer's only path to a gradient: codes no token chose get exactly zero.
 */

import { type Codebook, createCodebook, type QuantLayout } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";

export type TrainableQuantizer = {
  layout: QuantLayout;
  /** K: codes per group. */
  codes: number;
  /** (G, K, D) */
  embeddings: tf.Variable<tf.Rank.R3>;
};

export function createQuantizer(layout: QuantLayout, codebook: Codebook): TrainableQuantizer {
  if (codebook.groups !== layout.groups || codebook.dim !== layout.codeDim) {
    throw new RangeError(
      `codebook (${codebook.groups}, ${codebook.codes}, ${codebook.dim}) does not serve ` +
        `${layout.groups} groups of dimension ${layout.codeDim}`,
    );
  }
  const { groups, codes, dim, data } = codebook;
  const embeddings = tf.tidy(() => tf.variable(tf.tensor3d(data, [groups, codes, dim])));
  return { layout, codes, embeddings };
}

/** The codebook's current values on the host (an asynchronous read: webgpu needs one). */
export async function readCodebook(q: TrainableQuantizer): Promise<Codebook> {
  const data = (await q.embeddings.data()) as Float32Array;
  return createCodebook(q.layout.groups, q.codes, q.layout.codeDim, data);
}

/** Overwrites the codebook (after a dead-code reset on the host). */
export function writeCodebook(q: TrainableQuantizer, codebook: Codebook): void {
  const { groups, codeDim } = q.layout;
  tf.tidy(() => q.embeddings.assign(tf.tensor3d(codebook.data, [groups, q.codes, codeDim])));
}

/**
 * Row of each token's code in the codebook viewed as (G·K, D): (t mod G)·K + id.
 * ids: (B·T,) → (B·T,) int32.
 */
export function codeRows(q: TrainableQuantizer, ids: Uint32Array): Int32Array {
  const { tokens, groups } = q.layout;
  const rows = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) rows[i] = ((i % tokens) % groups) * q.codes + ids[i];
  return rows;
}

/** The quantized tokens: rows (B·T,) → (B·T, D), differentiable with respect to the codebook. */
export function gatherCodes(q: TrainableQuantizer, rows: tf.Tensor1D): tf.Tensor2D {
  const { groups, codeDim } = q.layout;
  return tf.gather(tf.reshape(q.embeddings, [groups * q.codes, codeDim]), rows) as tf.Tensor2D;
}

export function disposeQuantizer(q: TrainableQuantizer): void {
  q.embeddings.dispose();
}
