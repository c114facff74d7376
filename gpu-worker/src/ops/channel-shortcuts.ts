/**
 * DC-AE's non-parametric shortcuts as one op each, with the residual they are added to:
 *
 *   channel means   [B,sH,sW,Cx] → [B,H,W,C]:   mean over runs of g = s²Cx/C consecutive
 *                   channels of pixelUnshuffleˢ(x)   (down blocks, the encoder's out-shortcut)
 *   channel repeats [B,H,W,Cx] → [B,sH,sW,C]:   pixelShuffleˢ(each channel repeated r = s²C/Cx
 *                   times)   (up blocks, the decoder's in-shortcut, nearest ×2 upsampling)
 *
 * with s ∈ {1, 2} (s = 1: no rearrangement). As tfjs ops they take a transpose, a reduction or a
 * broadcast, and the add, each a dispatch; a GPU backend runs each op in one
 * (backends/webgpu/channel-shortcuts.ts). The two are adjoint: each one's gradient is the other
 * one, scaled (1/g and r). Every backend gets reference kernels made of ops here.
 */

import * as tf from "@tensorflow/tfjs-core";
import { fromOps, hasFastKernel, registerReferenceKernel } from "../backends/op-kernels.ts";
import { pixelShuffle, pixelUnshuffle } from "./pixel-shuffle.ts";

/** Inputs x, optional residual [B,H,W,C]; attrs space, channels. Output [B,H,W,C]. */
export const CHANNEL_MEANS = "RevqChannelMeans";
/** Inputs x, optional residual [B,sH,sW,C]; attrs space, channels. Output [B,sH,sW,C]. */
export const CHANNEL_REPEATS = "RevqChannelRepeats";

export type Space = 1 | 2;
export type ShortcutAttrs = { space: Space; channels: number };

/** y [B,H,W,C] = mean_g(pixelUnshuffleˢ(x)) (+ residual), x [B,sH,sW,Cx]. */
export function channelMeansOp(
  x: tf.Tensor4D,
  space: Space,
  channels: number,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (h % space !== 0 || w % space !== 0 || (space * space * c) % channels !== 0) {
    throw new Error(`channelMeansOp: [${x.shape}] does not average to ${channels} channels`);
  }
  checkResidual(residual, [b, h / space, w / space, channels], "channelMeansOp");
  return run(CHANNEL_MEANS, x, { space, channels }, residual, channelMeansReference);
}

/** y [B,sH,sW,C] = pixelShuffleˢ(repeat_r(x)) (+ residual), x [B,H,W,Cx]. */
export function channelRepeatsOp(
  x: tf.Tensor4D,
  space: Space,
  channels: number,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if ((space * space * channels) % c !== 0) {
    throw new Error(`channelRepeatsOp: [${x.shape}] does not repeat to ${channels} channels`);
  }
  checkResidual(residual, [b, h * space, w * space, channels], "channelRepeatsOp");
  return run(CHANNEL_REPEATS, x, { space, channels }, residual, channelRepeatsReference);
}

/** Nearest-neighbour ×2 upsampling, [B,H,W,C] → [B,2H,2W,C]: each value repeated 4 times. */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  return channelRepeatsOp(x, 2, x.shape[3]);
}

type Reference = (x: tf.Tensor4D, attrs: ShortcutAttrs, residual?: tf.Tensor4D) => tf.Tensor4D;

function run(
  kernelName: string,
  x: tf.Tensor4D,
  attrs: ShortcutAttrs,
  residual: tf.Tensor4D | undefined,
  reference: Reference,
): tf.Tensor4D {
  if (x.dtype !== "float32") throw new Error(`${kernelName}: x is ${x.dtype}`);
  if (!hasFastKernel(kernelName)) return reference(x, attrs, residual);
  const inputs: tf.NamedTensorMap = residual ? { x, residual } : { x };
  return tf
    .engine()
    .runKernel(kernelName, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

function checkResidual(residual: tf.Tensor | undefined, shape: number[], op: string): void {
  if (residual && !tf.util.arraysEqual(residual.shape, shape)) {
    throw new Error(`${op}: residual [${residual.shape}] is not the output's [${shape}]`);
  }
}

/** The composition the models ran before this op, in its order of ops. */
function channelMeansReference(
  x: tf.Tensor4D,
  { space, channels }: ShortcutAttrs,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  const unshuffled = space === 2 ? pixelUnshuffle(x) : x;
  const [b, h, w, c] = unshuffled.shape;
  const g = c / channels;
  const means: tf.Tensor4D =
    g === 1 ? unshuffled : tf.mean(tf.reshape(unshuffled, [b, h, w, channels, g]), 4);
  return residual ? tf.add(residual, means) : means;
}

/** Repeats stay at rank 3: webgpu runs Tile of rank 5 and up on the CPU, which Node can't. */
function channelRepeatsReference(
  x: tf.Tensor4D,
  { space, channels }: ShortcutAttrs,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const r = (space * space * channels) / c;
  const repeated: tf.Tensor4D =
    r === 1
      ? x
      : tf.reshape(tf.broadcastTo(tf.reshape(x, [b * h * w, c, 1]), [b * h * w, c, r]), [
          b,
          h,
          w,
          c * r,
        ]);
  const shuffled = space === 2 ? pixelShuffle(repeated) : repeated;
  return residual ? tf.add(residual, shuffled) : shuffled;
}

const attrsOf = (attrs: unknown) => attrs as ShortcutAttrs;

registerReferenceKernel(
  CHANNEL_MEANS,
  fromOps((i, attrs) =>
    channelMeansReference(i.x as tf.Tensor4D, attrsOf(attrs), i.residual as tf.Tensor4D),
  ),
);
registerReferenceKernel(
  CHANNEL_REPEATS,
  fromOps((i, attrs) =>
    channelRepeatsReference(i.x as tf.Tensor4D, attrsOf(attrs), i.residual as tf.Tensor4D),
  ),
);

/**
 * Each op's gradient is the other op on dy, back to x's channels, times `scale` (1/g for the
 * means, r for the repeats); the residual's is dy. The engine asks only for the inputs the op
 * was given: residual's is read when it was.
 */
function registerAdjointGradient(
  kernelName: string,
  adjoint: typeof channelMeansOp,
  scale: (attrs: ShortcutAttrs, xChannels: number) => number,
): void {
  tf.registerGradient({
    kernelName,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const shortcut = attrsOf(attrs);
      const xChannels = (saved[0] as tf.Tensor4D).shape[3];
      return {
        x: () =>
          tf.mul(adjoint(dy as tf.Tensor4D, shortcut.space, xChannels), scale(shortcut, xChannels)),
        residual: () => dy as tf.Tensor,
      };
    },
  });
}

registerAdjointGradient(
  CHANNEL_MEANS,
  channelRepeatsOp,
  ({ space, channels }, xChannels) => channels / (space * space * xChannels),
);
registerAdjointGradient(
  CHANNEL_REPEATS,
  channelMeansOp,
  ({ space, channels }, xChannels) => (space * space * channels) / xChannels,
);
