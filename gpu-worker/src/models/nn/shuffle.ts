/**
 * Channel and space rearrangements of DC-AE, channels-last, in PyTorch's channel order:
 * pixel-unshuffle puts input channel c at (2h+dy, 2w+dx) into output channel 4c + 2dy + dx
 * (TensorFlow's spaceToDepth orders them (dy, dx, c) instead, so it is not used).
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

// Broadcasts stay at rank 3: webgpu runs Tile of rank 5 and up on the CPU, which Node can't.

/** [B,H,W,C] → [B,H,W,C·r]: each channel repeated r times in a row (repeat_interleave). */
export function repeatChannels(x: tf.Tensor4D, r: number): tf.Tensor4D {
  if (r === 1) return x;
  const [b, h, w, c] = x.shape;
  const repeated = tf.broadcastTo(tf.reshape(x, [b * h * w, c, 1]), [b * h * w, c, r]);
  return tf.reshape(repeated, [b, h, w, c * r]);
}

/** [B,H,W,C] → [B,H,W,C/g]: the mean of each run of g consecutive channels. */
export function meanChannelGroups(x: tf.Tensor4D, g: number): tf.Tensor4D {
  if (g === 1) return x;
  const [b, h, w, c] = x.shape;
  return tf.mean(tf.reshape(x, [b, h, w, c / g, g]), 4);
}

/** [B,H,W,C] → [B,2H,2W,C], nearest neighbour; broadcasts, so its gradient works everywhere. */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const rows = tf.broadcastTo(tf.reshape(x, [b * h, 1, w * c]), [b * h, 2, w * c]);
  const cols = tf.broadcastTo(tf.reshape(rows, [b * 2 * h * w, 1, c]), [b * 2 * h * w, 2, c]);
  return tf.reshape(cols, [b, 2 * h, 2 * w, c]);
}
