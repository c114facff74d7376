/**
 * A grouped 1×1 convolution over the last (channel) axis as one op, with its gradient as a
 * second one. Group g owns input channels g·d_in … g·d_in + d_in − 1 and output channels
 * g·d_out …:
 *
 *   out[..., g·d_out + o] = Σ_i x[..., g·d_in + i] · weight[g, i, o]
 *
 * As tfjs ops it is a transpose to [G, rows, d_in], a batched matmul and a transpose back (3
 * kernels forward, more for the gradient); a GPU backend runs it without any transpose
 * (backends/webgpu/grouped-pointwise.ts). Every backend gets reference kernels made of ops.
 */

import * as tf from "@tensorflow/tfjs-core";
import { fromOps, hasFastKernel, registerReferenceKernel } from "../backends/op-kernels.ts";

/** Inputs x [..., G·d_in], weight [G, d_in, d_out]. Output [..., G·d_out]. */
export const GROUPED_POINTWISE = "RevqGroupedPointwise";
/** Inputs dy [..., G·d_out], x [..., G·d_in], weight [G, d_in, d_out]. Outputs dx, dweight. */
export const GROUPED_POINTWISE_GRAD = "RevqGroupedPointwiseGrad";

/** out [..., G·d_out] = each group of x's channels times its own [d_in, d_out] matrix. */
export function groupedPointwiseOp<T extends tf.Tensor>(x: T, weight: tf.Tensor3D): T {
  checkShapes(x, weight);
  if (!hasFastKernel(GROUPED_POINTWISE)) return groupedPointwiseReference(x, weight);
  return tf.engine().runKernel(GROUPED_POINTWISE, { x, weight }) as T;
}

/** The plain composition, in attention.ts's order of ops (cpu results match it exactly). */
export function groupedPointwiseReference<T extends tf.Tensor>(x: T, weight: tf.Tensor3D): T {
  const [groups, dIn, dOut] = weight.shape;
  const grouped = tf.transpose(tf.reshape(x, [-1, groups, dIn]), [1, 0, 2]); // [G, R, d_in]
  const mixed = tf.matMul(grouped, weight); // [G, R, d_out]
  return tf.reshape(tf.transpose(mixed, [1, 0, 2]), [...x.shape.slice(0, -1), groups * dOut]) as T;
}

/**
 * [dx like x, dweight like weight], as matMul's own gradient computes them on [G, R, ·] views:
 * dx_g = dy_g · weight_gᵀ, dweight_g = x_gᵀ · dy_g.
 */
export function groupedPointwiseGradReference(
  dy: tf.Tensor,
  x: tf.Tensor,
  weight: tf.Tensor3D,
): [tf.Tensor, tf.Tensor3D] {
  const [groups, dIn, dOut] = weight.shape;
  const byGroup = (t: tf.Tensor, d: number) =>
    tf.transpose(tf.reshape(t, [-1, groups, d]), [1, 0, 2]) as tf.Tensor3D; // [G, R, d]
  const [dyGroups, xGroups] = [byGroup(dy, dOut), byGroup(x, dIn)];
  const dxGroups = tf.matMul(dyGroups, weight, false, true); // [G, R, d_in]
  const dx = tf.reshape(tf.transpose(dxGroups, [1, 0, 2]), x.shape);
  return [dx, tf.matMul(xGroups, dyGroups, true, false)];
}

function checkShapes(x: tf.Tensor, weight: tf.Tensor3D): void {
  const channels = x.shape[x.rank - 1];
  if (weight.rank !== 3 || x.rank === 0 || channels !== weight.shape[0] * weight.shape[1]) {
    throw new Error(
      `groupedPointwiseOp: x [${x.shape}] needs G·d_in channels for weight [G, d_in, d_out], ` +
        `not [${weight.shape}]`,
    );
  }
  if (x.dtype !== "float32" || weight.dtype !== "float32") {
    throw new Error(`groupedPointwiseOp: x and weight must be float32`);
  }
}

export const groupedPointwiseReferenceKernel = fromOps((i) =>
  groupedPointwiseReference(i.x, i.weight as tf.Tensor3D),
);

export const groupedPointwiseGradReferenceKernel = fromOps((i) =>
  groupedPointwiseGradReference(i.dy, i.x, i.weight as tf.Tensor3D),
);

registerReferenceKernel(GROUPED_POINTWISE, groupedPointwiseReferenceKernel);
registerReferenceKernel(GROUPED_POINTWISE_GRAD, groupedPointwiseGradReferenceKernel);

tf.registerGradient({
  kernelName: GROUPED_POINTWISE,
  inputsToSave: ["x", "weight"],
  gradFunc: (dy, [x, weight]) => {
    const [dx, dweight] = tf
      .engine()
      .runKernel(GROUPED_POINTWISE_GRAD, { dy: dy as tf.Tensor, x, weight }) as tf.Tensor[];
    return { x: () => dx, weight: () => dweight };
  },
});
