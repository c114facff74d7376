/**
 * The small VAE in tfjs, channels-last: images [B,H,W,3] in [-1, 1] ↔ latents [B,H/f,W/f,C].
 * DC-AE's design at a small scale, built from its blocks: a pixel-unshuffle stem (so no layer runs
 * at full resolution, the costliest place on a CPU), ResBlock stages joined by pixel-(un)shuffle
 * down/up blocks with DC-AE's averaging/repeating shortcuts, and the same shortcuts around the
 * latent. The shortcuts make the untrained network already a rough area-average autoencoder, which
 * is what lets a few hundred CPU steps reach a useful reconstruction.
 *
 * Parameter names are PyTorch style (`encoder.down_blocks.0.0.conv1.weight`), so weights load and
 * save through the same paramLoader/toTorch as the other models.
 */

import * as tf from "@tensorflow/tfjs-core";
import { channelMeansOp, channelRepeatsOp } from "../../ops/channel-shortcuts.ts";
import { pixelShuffle, pixelUnshuffle } from "../../ops/pixel-shuffle.ts";
import { RMS_EPS } from "../dcae/config.ts";
import { type Block, type ResBlock, runBlock } from "../nn/blocks.ts";
import { type Conv, conv2d, type RmsNorm, rmsNorm } from "../nn/layers.ts";
import { NO_PROBE } from "../nn/probe.ts";
import { type Step, sequential } from "../nn/sequential.ts";
import { randomInitSource } from "../sources.ts";
import {
  type Binding,
  type MakeParam,
  type ParamLoader,
  paramLoader,
  type TensorSource,
} from "../weights.ts";
import { checkSmallVaeConfig, type SmallVaeConfig } from "./config.ts";

export type SmallVae = {
  config: SmallVaeConfig;
  encoder: { convIn: Conv; stages: Block[][]; convOut: Conv };
  /** stages[i] run from the last to the first, each up block (if any) before its ResBlocks. */
  decoder: { convIn: Conv; stages: Block[][]; normOut: RmsNorm; convOut: Conv };
  /** Every parameter with its state-dict name, in load order. */
  bindings: Binding[];
};

const RGB = 3;

/** Loads both halves from a state dict, strictly. `make` turns tensors into parameters. */
export async function loadSmallVae(
  config: SmallVaeConfig,
  source: TensorSource,
  make?: MakeParam,
): Promise<SmallVae> {
  checkSmallVaeConfig(config);
  const load = paramLoader(source, make);
  try {
    const encoder = await loadEncoder(config, load);
    const decoder = await loadDecoder(config, load);
    load.finish();
    return { config, encoder, decoder, bindings: load.bindings };
  } catch (error) {
    tf.dispose(load.bindings.map((b) => b.param));
    throw error;
  }
}

/**
 * A trainable model with PyTorch's default initialisation from a seeded generator, except that
 * each ResBlock's norm weight starts at 0 (Goyal et al.'s zero-γ): every ResBlock starts as the
 * identity, so the untrained model is its shortcut path, and the blocks grow in from there.
 */
export function initSmallVae(config: SmallVaeConfig, seed: number): Promise<SmallVae> {
  const random = randomInitSource(seed);
  const source: TensorSource = {
    async read(name, shape) {
      const values = await random.read(name, shape);
      return /_blocks\.\d+\.\d+\.norm\.weight$/.test(name) ? values.fill(0) : values;
    },
    names: () => random.names(),
  };
  return loadSmallVae(config, source, (t) => tf.variable(t));
}

async function loadEncoder(config: SmallVaeConfig, load: ParamLoader) {
  const { channels, encoderLayers } = config;
  const convIn = await load.conv("encoder.conv_in", 4 * RGB, channels[0], 3, true);
  const stages: Block[][] = [];
  for (const [i, c] of channels.entries()) {
    const path = `encoder.down_blocks.${i}`;
    const list: Block[] = [];
    for (let j = 0; j < encoderLayers[i]; j++)
      list.push(await loadResBlock(c, load, `${path}.${j}`));
    if (i < channels.length - 1) {
      const conv = await load.conv(`${path}.${list.length}.conv`, c, channels[i + 1] / 4, 3, true);
      list.push({ kind: "down", conv, pixelUnshuffle: true, shortcut: true });
    }
    stages.push(list);
  }
  const last = channels[channels.length - 1];
  const convOut = await load.conv("encoder.conv_out", last, config.latentChannels, 3, true);
  return { convIn, stages, convOut };
}

async function loadDecoder(config: SmallVaeConfig, load: ParamLoader) {
  const { channels, decoderLayers } = config;
  const last = channels[channels.length - 1];
  const convIn = await load.conv("decoder.conv_in", config.latentChannels, last, 3, true);
  const stages: Block[][] = [];
  for (const [i, c] of channels.entries()) {
    const path = `decoder.up_blocks.${i}`;
    const list: Block[] = [];
    if (i < channels.length - 1) {
      const conv = await load.conv(`${path}.0.conv`, channels[i + 1], 4 * c, 3, true);
      list.push({ kind: "up", conv, interpolate: false, shortcut: true });
    }
    const offset = list.length;
    for (let j = 0; j < decoderLayers[i]; j++) {
      list.push(await loadResBlock(c, load, `${path}.${offset + j}`));
    }
    stages.push(list);
  }
  return {
    convIn,
    stages,
    normOut: await load.rmsNorm("decoder.norm_out", channels[0], RMS_EPS),
    convOut: await load.conv("decoder.conv_out", channels[0], 4 * RGB, 3, true),
  };
}

/** DC-AE's ResBlock (conv1 with bias, conv2 without, RMSNorm), with diffusers' names. */
async function loadResBlock(c: number, load: ParamLoader, path: string): Promise<ResBlock> {
  return {
    kind: "res",
    conv1: await load.conv(`${path}.conv1`, c, c, 3, true),
    conv2: await load.conv(`${path}.conv2`, c, c, 3, false),
    norm: await load.rmsNorm(`${path}.norm`, c, RMS_EPS),
  };
}

/** [B,H,W,3] → [B,H/f,W/f,C], block by block (nn/sequential.ts). */
export function encode(vae: SmallVae, x: tf.Tensor4D): tf.Tensor4D {
  const p = vae.encoder;
  return sequential(x, [
    (image) => conv2d(p.convIn, pixelUnshuffle(image)),
    ...blockSteps(p.stages.flat()),
    (h) => channelMeansOp(h, 1, vae.config.latentChannels, conv2d(p.convOut, h)),
  ]);
}

/** [B,h,w,C] → [B,h·f,w·f,3], not clamped; block by block. */
export function decode(vae: SmallVae, z: tf.Tensor4D): tf.Tensor4D {
  const p = vae.decoder;
  return sequential(z, [
    (latent) => channelRepeatsOp(latent, 1, p.convIn.filter.shape[3], conv2d(p.convIn, latent)),
    ...blockSteps(p.stages.toReversed().flat()),
    (h) => pixelShuffle(conv2d(p.convOut, tf.relu(rmsNorm(p.normOut, h)))),
  ]);
}

const blockSteps = (blocks: Block[]): Step[] =>
  blocks.map((block) => (h) => runBlock(block, h, NO_PROBE));

export function disposeSmallVae(vae: SmallVae): void {
  tf.dispose(vae.bindings.map((b) => b.param));
}
