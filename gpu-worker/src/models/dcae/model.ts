/**
 * DC-AE (diffusers `AutoencoderDC`) in tfjs, channels-last: images [B,H,W,3] in [-1, 1] ↔
 * latents [B,H/f,W/f,C]. No scaling factor is applied (as diffusers' encode/decode).
 */

import * as tf from "@tensorflow/tfjs-core";
import { channelMeansOp, channelRepeatsOp } from "../../ops/channel-shortcuts.ts";
import { runBlock } from "../nn/blocks.ts";
import { conv2d, rmsNorm } from "../nn/layers.ts";
import { NO_PROBE, type Probe } from "../nn/probe.ts";
import { type Step, sequential } from "../nn/sequential.ts";
import {
  type Binding,
  type MakeParam,
  type ParamLoader,
  paramLoader,
  type TensorSource,
} from "../weights.ts";
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
  return loadStrictly(source, make, "", async (load) => ({
    config,
    encoder: await loadEncoder(config.encoder, load, "encoder."),
    decoder: await loadDecoder(config.decoder, load, "decoder."),
    bindings: load.bindings,
  }));
}

/**
 * One half only. On wasm, whose heap ends at 4 GB and where XNNPACK keeps a packed copy of each
 * convolution's weights, f32c32 (1.25 GB) fits one half per process but not both once both ran.
 */
export async function loadDcaeEncoder(
  config: DcaeConfig,
  source: TensorSource,
  make?: MakeParam,
): Promise<{ encoder: EncoderParams; bindings: Binding[] }> {
  return loadStrictly(source, make, "encoder.", async (load) => ({
    encoder: await loadEncoder(config.encoder, load, "encoder."),
    bindings: load.bindings,
  }));
}

export async function loadDcaeDecoder(
  config: DcaeConfig,
  source: TensorSource,
  make?: MakeParam,
): Promise<{ decoder: DecoderParams; bindings: Binding[] }> {
  return loadStrictly(source, make, "decoder.", async (load) => ({
    decoder: await loadDecoder(config.decoder, load, "decoder."),
    bindings: load.bindings,
  }));
}

/** Builds with a fresh loader; every tensor under `prefix` must be used; nothing leaks on error. */
async function loadStrictly<T>(
  source: TensorSource,
  make: MakeParam | undefined,
  prefix: string,
  build: (load: ParamLoader) => Promise<T>,
): Promise<T> {
  const load = paramLoader(source, make);
  try {
    const built = await build(load);
    load.finish(prefix);
    return built;
  } catch (error) {
    tf.dispose(load.bindings.map((b) => b.param));
    throw error;
  }
}

/** [B,H,W,3] → [B,H/f,W/f,C], block by block (nn/sequential.ts). */
export function encode(p: EncoderParams, x: tf.Tensor4D, probe: Probe = NO_PROBE): tf.Tensor4D {
  const convIn: Step = (image) => {
    const h = conv2d(p.convIn, image);
    probe.at("conv_in").record("out", () => h);
    return h;
  };
  const blocks = p.stages.flatMap((stage, i) =>
    stage.map(
      (block, j): Step =>
        (h) =>
          runBlock(block, h, probe.at(`down_blocks.${i}.${j}`)),
    ),
  );
  const convOut: Step = (h) => {
    const out = conv2d(p.convOut, h);
    probe.at("conv_out").record("out", () => out);
    return p.outShortcut ? channelMeansOp(h, 1, out.shape[3], out) : out;
  };
  return sequential(x, [convIn, ...blocks, convOut]);
}

/** [B,h,w,C] → [B,h·f,w·f,3], block by block (nn/sequential.ts). */
export function decode(p: DecoderParams, z: tf.Tensor4D, probe: Probe = NO_PROBE): tf.Tensor4D {
  const convIn: Step = (latent) => {
    const inConv = conv2d(p.convIn, latent);
    probe.at("conv_in").record("out", () => inConv);
    return p.inShortcut ? channelRepeatsOp(latent, 1, inConv.shape[3], inConv) : inConv;
  };
  const blocks = p.stages
    .map((stage, i) =>
      stage.map(
        (block, j): Step =>
          (h) =>
            runBlock(block, h, probe.at(`up_blocks.${i}.${j}`)),
      ),
    )
    .reverse()
    .flat();
  const convOut: Step = (h) => {
    const normed = rmsNorm(p.normOut, h);
    probe.at("norm_out").record("out", () => normed);
    const act = tf.relu(normed);
    probe.at("conv_act").record("out", () => act);
    const out = conv2d(p.convOut, act);
    probe.at("conv_out").record("out", () => out);
    return out;
  };
  return sequential(z, [convIn, ...blocks, convOut]);
}

export function disposeDcae(model: Dcae): void {
  tf.dispose(model.bindings.map((b) => b.param));
}
