/**
 * torch.nn.utils.clip_grad_norm_ (max_norm 1 in ReVQ, once per module): the L2 norm of all of a
 * module's gradients together, and the gradients scaled by min(1, max/(norm + 1e-6)).
 */

import * as tf from "@tensorflow/tfjs-core";

export type Clipped = {
  /** The gradients after scaling (new tensors; the inputs are left to the caller). */
  grads: tf.Tensor[];
  /** The total norm before clipping: sqrt(Σ‖g‖²). */
  norm: tf.Scalar;
};

export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): Clipped {
  return tf.tidy(() => {
    const squares = grads.map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(tf.addN(squares)) as tf.Scalar;
    const coef = tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1);
    return { grads: grads.map((g) => tf.mul(g, coef)), norm };
  });
}
