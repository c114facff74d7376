/**
 * DC-AE's rearrangements of space into channels and back, channels-last, in PyTorch's channel
 * order: pixel-unshuffle puts input channel c at (2h+dy, 2w+dx) into output channel
 * 4c + 2dy + dx (TensorFlow's spaceToDepth orders them (dy, dx, c) instead, so it is not used).
 * Plain tfjs ops: a reshape and one transpose each.
 */

import * as tf from "@tensorflow/tfjs-core";

/** [B,H,W,C] → [B,H/2,W/2,4C]. */
export function pixelUnshuffle(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const split = tf.reshape(x, [b, h / 2, 2, w / 2, 2, c]); // [b, h', dy, w', dx, c]
  return tf.reshape(tf.transpose(split, [0, 1, 3, 5, 2, 4]), [b, h / 2, w / 2, 4 * c]);
}

/** [B,H,W,4C] → [B,2H,2W,C]: the inverse of pixelUnshuffle. */
export function pixelShuffle(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c4] = x.shape;
  const split = tf.reshape(x, [b, h, w, c4 / 4, 2, 2]); // [b, h, w, c, dy, dx]
  return tf.reshape(tf.transpose(split, [0, 1, 4, 2, 5, 3]), [b, 2 * h, 2 * w, c4 / 4]);
}
