/**
 * DC-AE's blocks (diffusers `autoencoder_dc.py`), NHWC. Each returns a new tensor; callers tidy.
 */

import type * as tf from "@tensorflow/tfjs-core";
import {
  channelMeansOp,
  channelRepeatsOp,
  upsampleNearest2x,
} from "../../ops/channel-shortcuts.ts";
import { pixelShuffle, pixelUnshuffle } from "../../ops/pixel-shuffle.ts";
import { siluGluOp } from "../../ops/silu.ts";
import { type Attention, multiscaleAttention } from "./attention.ts";
import {
  type Conv,
  conv2d,
  type Depthwise,
  depthwise,
  type RmsNorm,
  rmsNorm,
  silu,
} from "./layers.ts";
import type { Probe } from "./probe.ts";

export type ResBlock = { kind: "res"; conv1: Conv; conv2: Conv; norm: RmsNorm };
export type GluMbConv = { inverted: Conv; depth: Depthwise; point: Conv; norm: RmsNorm };
export type EfficientVitBlock = { kind: "evit"; attn: Attention; mlp: GluMbConv };
/** `pixelUnshuffle`: a stride-1 conv to Cout/4 then pixel-unshuffle; else a stride-2 conv. */
export type DownBlock = { kind: "down"; conv: Conv; pixelUnshuffle: boolean; shortcut: boolean };
/** `interpolate`: nearest ×2 then a conv; else a conv to 4·Cout then pixel-shuffle. */
export type UpBlock = { kind: "up"; conv: Conv; interpolate: boolean; shortcut: boolean };
export type Block = ResBlock | EfficientVitBlock | DownBlock | UpBlock;

export function runBlock(block: Block, x: tf.Tensor4D, probe: Probe): tf.Tensor4D {
  probe.record("in", () => x);
  const y = runBlockBody(block, x, probe);
  probe.record("out", () => y);
  return y;
}

function runBlockBody(block: Block, x: tf.Tensor4D, probe: Probe): tf.Tensor4D {
  switch (block.kind) {
    case "res":
      return resBlock(block, x, probe);
    case "evit":
      return efficientVitBlock(block, x, probe);
    case "down":
      return downBlock(block, x);
    case "up":
      return upBlock(block, x);
  }
}

/** x + norm(conv2(silu(conv1(x)))). */
function resBlock(p: ResBlock, x: tf.Tensor4D, probe: Probe): tf.Tensor4D {
  const a = conv2d(p.conv1, x);
  probe.at("conv1").record("out", () => a);
  const b = conv2d(p.conv2, silu(a));
  probe.at("conv2").record("out", () => b);
  // The norm alone is computed again only for a probe that records it.
  probe.at("norm").record("out", () => rmsNorm(p.norm, b));
  return rmsNorm(p.norm, b, x);
}

function efficientVitBlock(p: EfficientVitBlock, x: tf.Tensor4D, probe: Probe): tf.Tensor4D {
  const attended = multiscaleAttention(p.attn, x, probe.at("attn"));
  probe.at("attn").record("out", () => attended);
  const mlpProbe = probe.at("conv_out");
  mlpProbe.record("in", () => attended);
  const out = gluMbConv(p.mlp, attended, mlpProbe);
  mlpProbe.record("out", () => out);
  return out;
}

/** x + norm(point(a · silu(gate))) where [a | gate] = depth(silu(inverted(x))). */
function gluMbConv(p: GluMbConv, x: tf.Tensor4D, probe: Probe): tf.Tensor4D {
  const inverted = conv2d(p.inverted, x); // [B,H,W,2·hidden]
  probe.at("conv_inverted").record("out", () => inverted);
  const mixed = depthwise(p.depth, silu(inverted));
  probe.at("conv_depth").record("out", () => mixed);
  const pointed = conv2d(p.point, siluGluOp(mixed));
  probe.at("conv_point").record("out", () => pointed);
  probe.at("norm").record("out", () => rmsNorm(p.norm, pointed));
  return rmsNorm(p.norm, pointed, x);
}

/** [B,H,W,Cin] → [B,H/2,W/2,Cout]; the shortcut averages runs of 4·Cin/Cout unshuffled channels. */
function downBlock(p: DownBlock, x: tf.Tensor4D): tf.Tensor4D {
  const main = p.pixelUnshuffle ? pixelUnshuffle(conv2d(p.conv, x)) : conv2d(p.conv, x, 2);
  return p.shortcut ? channelMeansOp(x, 2, main.shape[3], main) : main;
}

/** [B,H,W,Cin] → [B,2H,2W,Cout]; the shortcut repeats channels 4·Cout/Cin times, then shuffles. */
function upBlock(p: UpBlock, x: tf.Tensor4D): tf.Tensor4D {
  const main = p.interpolate
    ? conv2d(p.conv, upsampleNearest2x(x))
    : pixelShuffle(conv2d(p.conv, x));
  return p.shortcut ? channelRepeatsOp(x, 2, main.shape[3], main) : main;
}
