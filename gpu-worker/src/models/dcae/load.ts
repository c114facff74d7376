/** Builds DC-AE's parameter trees from a state dict with diffusers' names, in module order. */

import type { Attention } from "../nn/attention.ts";
import type { Block, EfficientVitBlock, GluMbConv, ResBlock } from "../nn/blocks.ts";
import type { Conv, RmsNorm } from "../nn/layers.ts";
import type { ParamLoader } from "../weights.ts";
import { type DecoderSpec, type EncoderSpec, RMS_EPS, type StageSpec } from "./config.ts";

export type EncoderParams = {
  convIn: Conv;
  stages: Block[][];
  convOut: Conv;
  /** Whether each latent channel adds the mean of its run of the last stage's channels. */
  outShortcut: boolean;
};

export type DecoderParams = {
  convIn: Conv;
  /** Whether the first stage's input adds each latent channel repeated over its run. */
  inShortcut: boolean;
  /** stages[i] are `up_blocks.i`; they run from the last to the first. */
  stages: Block[][];
  normOut: RmsNorm;
  convOut: Conv;
};

export async function loadEncoder(
  spec: EncoderSpec,
  load: ParamLoader,
  prefix: string,
): Promise<EncoderParams> {
  const { stages } = spec;
  const convIn = await load.conv(`${prefix}conv_in`, spec.inChannels, stages[0].channels, 3, true);
  const blocks: Block[][] = [];
  for (const [i, stage] of stages.entries()) {
    const path = `${prefix}down_blocks.${i}`;
    const list: Block[] = [];
    for (let j = 0; j < stage.layers; j++)
      list.push(await loadBlock(stage, spec.headDim, load, `${path}.${j}`));
    if (i < stages.length - 1 && stage.layers > 0) {
      const cout = stages[i + 1].channels;
      const convOut = spec.pixelUnshuffle ? cout / 4 : cout;
      const conv = await load.conv(
        `${path}.${stage.layers}.conv`,
        stage.channels,
        convOut,
        3,
        true,
      );
      list.push({ kind: "down", conv, pixelUnshuffle: spec.pixelUnshuffle, shortcut: true });
    }
    blocks.push(list);
  }
  const last = stages[stages.length - 1].channels;
  return {
    convIn,
    stages: blocks,
    convOut: await load.conv(`${prefix}conv_out`, last, spec.latentChannels, 3, true),
    outShortcut: spec.outShortcut,
  };
}

export async function loadDecoder(
  spec: DecoderSpec,
  load: ParamLoader,
  prefix: string,
): Promise<DecoderParams> {
  const { stages } = spec;
  const last = stages[stages.length - 1].channels;
  const convIn = await load.conv(`${prefix}conv_in`, spec.latentChannels, last, 3, true);
  const blocks: Block[][] = [];
  for (const [i, stage] of stages.entries()) {
    const path = `${prefix}up_blocks.${i}`;
    const list: Block[] = [];
    if (i < stages.length - 1 && stage.layers > 0) {
      const cin = stages[i + 1].channels;
      const convOut = spec.interpolate ? stage.channels : stage.channels * 4;
      const conv = await load.conv(`${path}.0.conv`, cin, convOut, 3, true);
      list.push({ kind: "up", conv, interpolate: spec.interpolate, shortcut: true });
    }
    const offset = list.length;
    for (let j = 0; j < stage.layers; j++) {
      list.push(await loadBlock(stage, spec.headDim, load, `${path}.${offset + j}`));
    }
    blocks.push(list);
  }
  const first = stages[0].channels;
  return {
    convIn,
    inShortcut: spec.inShortcut,
    stages: blocks,
    normOut: await load.rmsNorm(`${prefix}norm_out`, first, RMS_EPS),
    convOut: await load.conv(`${prefix}conv_out`, first, spec.outChannels, 3, true),
  };
}

async function loadBlock(
  stage: StageSpec,
  headDim: number,
  load: ParamLoader,
  path: string,
): Promise<Block> {
  return stage.type === "ResBlock"
    ? loadResBlock(stage.channels, load, path)
    : loadEfficientVit(stage.channels, headDim, stage.multiscales, load, path);
}

async function loadResBlock(c: number, load: ParamLoader, path: string): Promise<ResBlock> {
  return {
    kind: "res",
    conv1: await load.conv(`${path}.conv1`, c, c, 3, true),
    conv2: await load.conv(`${path}.conv2`, c, c, 3, false),
    norm: await load.rmsNorm(`${path}.norm`, c, RMS_EPS),
  };
}

export async function loadEfficientVit(
  c: number,
  headDim: number,
  multiscales: number[],
  load: ParamLoader,
  path: string,
): Promise<EfficientVitBlock> {
  return {
    kind: "evit",
    attn: await loadAttention(c, headDim, multiscales, load, `${path}.attn`),
    mlp: await loadGluMbConv(c, load, `${path}.conv_out`),
  };
}

async function loadAttention(
  c: number,
  d: number,
  multiscales: number[],
  load: ParamLoader,
  path: string,
): Promise<Attention> {
  const heads = Math.floor(c / d); // diffusers: in_channels // head_dim · mult, mult = 1
  const inner = heads * d;
  const qkv = await load.linears([`${path}.to_q`, `${path}.to_k`, `${path}.to_v`], c, inner);
  const branches = [];
  for (const [i, k] of multiscales.entries()) {
    const branch = `${path}.to_qkv_multiscale.${i}`;
    branches.push({
      depthwise: await load.depthwise(`${branch}.proj_in`, 3 * inner, k, false),
      pointwise: await load.grouped(`${branch}.proj_out`, 3 * heads, d),
    });
  }
  return {
    headDim: d,
    qkv,
    branches,
    out: await load.linear(`${path}.to_out`, inner * (1 + multiscales.length), c),
    norm: await load.rmsNorm(`${path}.norm_out`, c, RMS_EPS),
  };
}

/** Sana's GLUMBConv with expand ratio 4: hidden = 4C, the inverted conv makes 2·hidden. */
async function loadGluMbConv(c: number, load: ParamLoader, path: string): Promise<GluMbConv> {
  const hidden = 4 * c;
  return {
    inverted: await load.conv(`${path}.conv_inverted`, c, 2 * hidden, 1, true),
    depth: await load.depthwise(`${path}.conv_depth`, 2 * hidden, 3, true),
    point: await load.conv(`${path}.conv_point`, hidden, c, 1, false),
    norm: await load.rmsNorm(`${path}.norm`, c, RMS_EPS),
  };
}
