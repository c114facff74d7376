/**
 * The ReVQ rectifier: one DC-AE decoder stage at latent resolution (ReVQ's `DCAEDecoder` with a
 * single stage) mapping a quantized latent back towards the original one. conv_in 3×3 plus the
 * repeat-interleave in-shortcut, N EfficientViT blocks, RMSNorm, ReLU, conv_out 3×3; no
 * upsampling, so the output has the input's shape. Parameter names are ReVQ's state-dict names
 * (`conv_in.*`, `up_blocks.0.<i>.*`, `norm_out.*`, `conv_out.*`).
 *
 * A residual rectifier (revq's own, not the paper's) adds the stage's output to its input and
 * starts with conv_out at zero, so it begins as the identity and learns only the correction:
 * the paper's stage must first rebuild q through RMSNorm, ReLU and conv_out, and on a small
 * rectifier the flat offsets it keeps from that cost more pixels than it wins
 * (docs/default-tokenizer.md).
 */

import * as tf from "@tensorflow/tfjs-core";
import type { DecoderSpec } from "./dcae/config.ts";
import { type DecoderParams, loadDecoder } from "./dcae/load.ts";
import { decode } from "./dcae/model.ts";
import { NO_PROBE, type Probe } from "./nn/probe.ts";
import { randomInitSource } from "./sources.ts";
import { type Binding, type MakeParam, paramLoader, type TensorSource } from "./weights.ts";

export type RectifierConfig = {
  /** Channels of the latent it rectifies (in and out). */
  latentChannels: number;
  /** Width of the stage; a multiple of latentChannels (the in-shortcut repeats channels). */
  channels: number;
  blocks: number;
  headDim: number;
  /** Kernel sizes of the attention's multiscale branches. */
  multiscales: number[];
  /** true: rectify(q) = q + stage(q). Absent for the paper's rectify(q) = stage(q). */
  residual?: true;
};

/**
 * The paper's three configurations on DC-AE f32c32 latents (32×8×8), and the training fixture's.
 * Keys: tokens × codes per group.
 */
export const RECTIFIER_PRESETS = {
  "512x16384": { latentChannels: 32, channels: 512, blocks: 3, headDim: 32, multiscales: [5] },
  "256x65536": { latentChannels: 32, channels: 1024, blocks: 4, headDim: 32, multiscales: [5] },
  "256x262144": { latentChannels: 32, channels: 512, blocks: 4, headDim: 32, multiscales: [5] },
  /** fixtures C: latent 4×4×4, one block of 32 channels with 8-channel heads. */
  tiny: { latentChannels: 4, channels: 32, blocks: 1, headDim: 8, multiscales: [5] },
} as const satisfies Record<string, RectifierConfig>;

export type RectifierPresetName = keyof typeof RECTIFIER_PRESETS;

/**
 * The configuration from ReVQ's `DCAEDecoder` keyword arguments (its YAML / the training
 * fixture's sidecar): one EfficientViT stage, in_channels = latent_channels.
 */
export function rectifierConfigFromRevq(kwargs: Record<string, unknown>): RectifierConfig {
  const stage = (key: string) => {
    const list = kwargs[key];
    if (!Array.isArray(list) || list.length !== 1) {
      throw new Error(`rectifier: ${key} must have exactly one stage, got ${JSON.stringify(list)}`);
    }
    return list[0];
  };
  if (stage("block_type") !== "EfficientViTBlock" || kwargs.norm_type !== "rms_norm") {
    throw new Error("rectifier: only one EfficientViTBlock stage with rms_norm is supported");
  }
  if (kwargs.in_channels !== kwargs.latent_channels) {
    throw new Error("rectifier: in_channels must equal latent_channels");
  }
  return {
    latentChannels: kwargs.latent_channels as number,
    channels: stage("block_out_channels") as number,
    blocks: stage("layers_per_block") as number,
    headDim: kwargs.attention_head_dim as number,
    multiscales: stage("qkv_multiscales") as number[],
  };
}

export type Rectifier = {
  config: RectifierConfig;
  params: DecoderParams;
  /** Every parameter with its ReVQ state-dict name, in PyTorch's named_parameters order. */
  bindings: Binding[];
};

export function rectifierSpec(config: RectifierConfig): DecoderSpec {
  if (config.channels % config.latentChannels !== 0 || config.channels % config.headDim !== 0) {
    throw new Error(
      `rectifier: channels ${config.channels} must be a multiple of the latent channels (${config.latentChannels}) and of the head dim (${config.headDim})`,
    );
  }
  return {
    outChannels: config.latentChannels,
    latentChannels: config.latentChannels,
    headDim: config.headDim,
    stages: [
      {
        type: "EfficientViTBlock",
        channels: config.channels,
        layers: config.blocks,
        multiscales: [...config.multiscales],
      },
    ],
    interpolate: true, // a single stage never up-samples
    inShortcut: true,
  };
}

/** Loads a rectifier from a ReVQ state dict, strictly. `make` turns tensors into parameters. */
export async function loadRectifier(
  config: RectifierConfig,
  source: TensorSource,
  make?: MakeParam,
): Promise<Rectifier> {
  const load = paramLoader(source, make);
  try {
    const params = await loadDecoder(rectifierSpec(config), load, "");
    load.finish();
    return { config, params, bindings: load.bindings };
  } catch (error) {
    tf.dispose(load.bindings.map((b) => b.param));
    throw error;
  }
}

/**
 * A trainable rectifier with PyTorch's default initialisation from a seeded generator; a residual
 * one with conv_out at zero, so that it starts as the identity.
 */
export function initRectifier(config: RectifierConfig, seed: number): Promise<Rectifier> {
  const source = randomInitSource(seed);
  return loadRectifier(config, config.residual ? zeroing(source, "conv_out.") : source, (t) =>
    tf.variable(t),
  );
}

/** `source` with the tensors whose names start with `prefix` read as zeros. */
function zeroing(source: TensorSource, prefix: string): TensorSource {
  return {
    async read(name, shape) {
      const data = await source.read(name, shape); // drawn all the same: the other tensors keep their values
      return name.startsWith(prefix) ? data.fill(0) : data;
    },
    names: () => source.names(),
  };
}

/** Quantized latent [B,H,W,C] → rectified latent [B,H,W,C]. */
export function rectify(
  r: Rectifier,
  quantized: tf.Tensor4D,
  probe: Probe = NO_PROBE,
): tf.Tensor4D {
  const out = decode(r.params, quantized, probe);
  return r.config.residual ? tf.add(quantized, out) : out;
}

/**
 * ReVQ's rectifier loss: mse(z, rectify(q)), the mean over all elements; with `weights`
 * (broadcast over the batch, train/loss-weights.ts) each element's squared error weighted.
 */
export function rectifierLoss(
  r: Rectifier,
  quantized: tf.Tensor4D,
  target: tf.Tensor4D,
  weights: tf.Tensor4D | null = null,
): tf.Scalar {
  const squared = tf.squaredDifference(rectify(r, quantized), target);
  return tf.mean(weights ? tf.mul(squared, weights) : squared);
}

export function disposeRectifier(r: Rectifier): void {
  tf.dispose(r.bindings.map((b) => b.param));
}
