/**
 * SiLU, x·sigmoid(x), and GLUMBConv's gate, a·silu(gate) for x = [a | gate] split on the last
 * axis, as one kernel each, with one gradient kernel each. Training on a GPU is bound by the
 * number of dispatches: the compositions take 2 (SiLU) and 5 (the gate) forward, and several
 * more backward.
 *
 * Every backend gets reference kernels made of ops here, at import; a backend may register a
 * faster one of its own (backends/webgpu/silu.ts), which these never replace. Only
 * @tensorflow/tfjs-core.
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  fromOps,
  hasFastKernel,
  type OpKernel,
  registerReferenceKernel,
} from "../backends/op-kernels.ts";

/** x → silu(x). */
export const SILU = "RevqSilu";
/** dy, x → dy·silu'(x). */
export const SILU_GRAD = "RevqSiluGrad";
/** x [..., 2H] → x[..., :H]·silu(x[..., H:]) [..., H]. */
export const GLU = "RevqSiluGlu";
/** dy [..., H], x [..., 2H] → dx [..., 2H]. */
export const GLU_GRAD = "RevqSiluGluGrad";

/** x → x·sigmoid(x), one kernel. */
export function siluOp<T extends tf.Tensor>(x: T): T {
  assertFloat(x, "siluOp");
  return hasFastKernel(SILU) ? tf.engine().runKernel(SILU, { x }) : siluReference(x);
}

/** x [..., 2H] → a·silu(gate) [..., H] where [a | gate] = x, one kernel. */
export function siluGluOp<T extends tf.Tensor>(x: T): T {
  assertFloat(x, "siluGluOp");
  if (x.rank === 0 || x.shape[x.rank - 1] % 2 !== 0) {
    throw new Error(`siluGluOp: the last axis of [${x.shape}] must have an even size`);
  }
  return hasFastKernel(GLU) ? tf.engine().runKernel(GLU, { x }) : siluGluReference(x);
}

/** layers.ts's silu, as ops. */
export function siluReference<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}

/** blocks.ts's gate, as ops: split the last axis in halves [a | gate], then a·silu(gate). */
export function siluGluReference<T extends tf.Tensor>(x: T): T {
  const [a, gate] = tf.split(x, 2, x.rank - 1);
  return tf.mul(a, siluReference(gate));
}

/** silu'(x) = s·(1 + x·(1 − s)), given s = sigmoid(x). */
function siluDerivative(x: tf.Tensor, s: tf.Tensor): tf.Tensor {
  return tf.mul(s, tf.add(1, tf.mul(x, tf.sub(1, s))));
}

function siluGradReference(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.mul(dy, siluDerivative(x, tf.sigmoid(x)));
}

/** [∂/∂a | ∂/∂gate] = [dy·gate·s | dy·a·silu'(gate)], one s = sigmoid(gate) for both. */
function siluGluGradReference(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const [a, gate] = tf.split(x, 2, x.rank - 1);
  const s = tf.sigmoid(gate);
  return tf.concat(
    [tf.mul(dy, tf.mul(gate, s)), tf.mul(tf.mul(dy, a), siluDerivative(gate, s))],
    x.rank - 1,
  );
}

function assertFloat(x: tf.Tensor, op: string): void {
  if (x.dtype !== "float32") throw new Error(`${op}: x must be float32, not ${x.dtype}`);
}

function registerReferenceKernels(): void {
  const kernels: Record<string, OpKernel> = {
    [SILU]: (i) => siluReference(i.x),
    [SILU_GRAD]: (i) => siluGradReference(i.dy, i.x),
    [GLU]: (i) => siluGluReference(i.x),
    [GLU_GRAD]: (i) => siluGluGradReference(i.dy, i.x),
  };
  for (const [kernelName, kernel] of Object.entries(kernels)) {
    registerReferenceKernel(kernelName, fromOps(kernel));
  }
}

/** Each forward kernel's gradient is its gradient kernel, on every backend. */
function registerGradients(): void {
  for (const [kernelName, gradName] of [
    [SILU, SILU_GRAD],
    [GLU, GLU_GRAD],
  ]) {
    tf.registerGradient({
      kernelName,
      inputsToSave: ["x"],
      gradFunc: (dy, [x]) => ({
        x: () => tf.engine().runKernel<tf.Tensor>(gradName, { dy: dy as tf.Tensor, x }),
      }),
    });
  }
}

registerReferenceKernels();
registerGradients();
