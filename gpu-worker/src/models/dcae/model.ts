/**
 * DC-AE (diffusers `AutoencoderDC`) in tfjs, channels-last: images [B,H,W,3] in [-1, 1] ↔
 * latents [B,H/f,W/f,C]. No scaling factor is applied (as diffusers' encode/decode).
 */

import * as tf from "@tensorflow/tfjs-core";
import { runBlock } from "../nn/blocks.ts";
import { conv2d, rmsNorm } from "../nn/layers.ts";
import { NO_PROBE, type Probe } from "../nn/probe.ts";
import { meanChannelGroups, repeatChannels } from "../nn/shuffle.ts";
import { type Binding, type MakeParam, paramLoader, type TensorSource } from "../weights.ts";
import type { DcaeConfig } from "./config.ts";
import { type DecoderParams, type EncoderParams, loadDecoder, loadEncoder } from "./load.ts";

export type Dcae = {
  config: DcaeConfig;
  encoder: EncoderParams;
  decoder: DecoderParams;
  /** Every parameter with its state-dict name, in load order. */
  bindings: Binding[];
};

/** Loads both halves from a diffusers state dict (`encoder.*`, `decoder.*`), strictly. */
export async function loadDcae(
  config: DcaeConfig,
  source: TensorSource,
  make?: MakeParam,
): Promise<Dcae> {
  const load = paramLoader(source, make);
  try {
    const encoder = await loadEncoder(config.encoder, load, "encoder.");
    const decoder = await loadDecoder(config.decoder, load, "decoder.");
    load.finish();
    return { config, encoder, decoder, bindings: load.bindings };
  } catch (error) {
    tf.dispose(load.bindings.map((b) => b.param));
    throw error;
  }
}

/** [B,H,W,3] → [B,H/f,W/f,C]. */
export function encode(p: EncoderParams, x: tf.Tensor4D, probe: Probe = NO_PROBE): tf.Tensor4D {
  let h = conv2d(p.convIn, x);
  probe.at("conv_in").record("out", () => h);
  p.stages.forEach((stage, i) => {
    stage.forEach((block, j) => {
      h = runBlock(block, h, probe.at(`down_blocks.${i}.${j}`));
    });
  });
  const out = conv2d(p.convOut, h);
  probe.at("conv_out").record("out", () => out);
  if (p.outShortcutGroup === null) return out;
  return tf.add(out, meanChannelGroups(h, p.outShortcutGroup));
}

/** [B,h,w,C] → [B,h·f,w·f,3]. */
export function decode(p: DecoderParams, z: tf.Tensor4D, probe: Probe = NO_PROBE): tf.Tensor4D {
  const inConv = conv2d(p.convIn, z);
  probe.at("conv_in").record("out", () => inConv);
  let h: tf.Tensor4D =
    p.inShortcutRepeats === null ? inConv : tf.add(inConv, repeatChannels(z, p.inShortcutRepeats));
  for (let i = p.stages.length - 1; i >= 0; i--) {
    p.stages[i].forEach((block, j) => {
      h = runBlock(block, h, probe.at(`up_blocks.${i}.${j}`));
    });
  }
  const normed = rmsNorm(p.normOut, h);
  probe.at("norm_out").record("out", () => normed);
  const act = tf.relu(normed);
  probe.at("conv_act").record("out", () => act);
  const out = conv2d(p.convOut, act);
  probe.at("conv_out").record("out", () => out);
  return out;
}

export function disposeDcae(model: Dcae): void {
  tf.dispose(model.bindings.map((b) => b.param));
}
