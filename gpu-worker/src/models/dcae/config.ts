/**
 * DC-AE configuration, read from a diffusers `config.json` (`AutoencoderDC`). Only what the
 * published DC-AE checkpoints use is supported (RMSNorm everywhere, SiLU in ResBlocks, ReLU
 * before the decoder's last conv, a first stage with at least one layer); anything else is
 * refused by name rather than computed differently.
 */

export type BlockType = "ResBlock" | "EfficientViTBlock";

export type StageSpec = {
  type: BlockType;
  channels: number;
  layers: number;
  /** Kernel sizes of the attention's multiscale branches (EfficientViT stages only). */
  multiscales: number[];
};

export type EncoderSpec = {
  inChannels: number;
  latentChannels: number;
  headDim: number;
  stages: StageSpec[];
  /** Downsample by a stride-1 conv + pixel-unshuffle ("pixel_unshuffle"), else a stride-2 conv. */
  pixelUnshuffle: boolean;
  outShortcut: boolean;
};

export type DecoderSpec = {
  outChannels: number;
  latentChannels: number;
  headDim: number;
  stages: StageSpec[];
  /** Upsample by nearest ×2 + conv ("interpolate"), else conv + pixel-shuffle. */
  interpolate: boolean;
  inShortcut: boolean;
};

export type DcaeConfig = {
  encoder: EncoderSpec;
  decoder: DecoderSpec;
  /** Metadata only: encode() does not apply it (diffusers' users multiply by it themselves). */
  scalingFactor: number;
  /** Image side / latent side. */
  spatialCompression: number;
};

/** All RMSNorms of DC-AE use this epsilon. */
export const RMS_EPS = 1e-5;

export function parseDcaeConfig(json: Record<string, unknown>): DcaeConfig {
  const get = <T>(key: string, check: (v: unknown) => v is T, fallback?: T): T => {
    const value = json[key] ?? fallback;
    if (!check(value))
      throw new Error(`DC-AE config: ${key} = ${JSON.stringify(value)} is not valid`);
    return value;
  };
  const latentChannels = get("latent_channels", isCount);
  const headDim = get("attention_head_dim", isCount, 32);
  const encoderStages = stages(json, "encoder", get("encoder_layers_per_block", isCounts));
  const decoderStages = stages(json, "decoder", get("decoder_layers_per_block", isCounts));
  for (const [key, allowed] of [
    ["decoder_norm_types", "rms_norm"],
    ["decoder_act_fns", "silu"],
  ] as const) {
    const values = perStage(json[key] ?? allowed, decoderStages.length, key);
    if (values.some((v) => v !== allowed)) {
      throw new Error(
        `DC-AE config: ${key} = ${JSON.stringify(json[key])}: only "${allowed}" is supported`,
      );
    }
  }
  if ((json.decoder_conv_act_fn ?? "relu") !== "relu") {
    throw new Error(
      `DC-AE config: decoder_conv_act_fn ${JSON.stringify(json.decoder_conv_act_fn)} is not supported`,
    );
  }
  for (const s of [encoderStages[0], decoderStages[0]]) {
    if (s.layers === 0)
      throw new Error("DC-AE config: a first stage without layers is not supported");
  }
  return {
    encoder: {
      inChannels: get("in_channels", isCount, 3),
      latentChannels,
      headDim,
      stages: encoderStages,
      pixelUnshuffle:
        get("downsample_block_type", isString, "pixel_unshuffle") === "pixel_unshuffle",
      outShortcut: get("encoder_out_shortcut", isBoolean, true),
    },
    decoder: {
      outChannels: get("in_channels", isCount, 3),
      latentChannels,
      headDim,
      stages: decoderStages,
      interpolate: get("upsample_block_type", isString, "pixel_shuffle") === "interpolate",
      inShortcut: get("decoder_in_shortcut", isBoolean, true),
    },
    scalingFactor: get("scaling_factor", isNumber, 1),
    spatialCompression: 2 ** (encoderStages.length - 1),
  };
}

function stages(
  json: Record<string, unknown>,
  side: "encoder" | "decoder",
  layers: number[],
): StageSpec[] {
  const channels = json[`${side}_block_out_channels`];
  if (!isCounts(channels) || channels.length !== layers.length) {
    throw new Error(`DC-AE config: ${side}_block_out_channels must list one count per stage`);
  }
  const types = perStage(
    json[`${side}_block_types`] ?? "ResBlock",
    layers.length,
    `${side}_block_types`,
  );
  const scales = json[`${side}_qkv_multiscales`];
  if (!Array.isArray(scales) || scales.length !== layers.length || !scales.every(isCountsOrEmpty)) {
    throw new Error(`DC-AE config: ${side}_qkv_multiscales must list kernel sizes per stage`);
  }
  return layers.map((n, i) => {
    const type = types[i];
    if (type !== "ResBlock" && type !== "EfficientViTBlock") {
      throw new Error(`DC-AE config: block type ${JSON.stringify(type)} is not supported`);
    }
    return { type, channels: channels[i], layers: n, multiscales: scales[i] as number[] };
  });
}

function perStage(value: unknown, n: number, key: string): unknown[] {
  if (typeof value === "string") return new Array(n).fill(value);
  if (Array.isArray(value) && value.length === n) return value;
  throw new Error(`DC-AE config: ${key} must be a string or one entry per stage`);
}

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isCounts = (v: unknown): v is number[] =>
  Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
const isCountsOrEmpty = (v: unknown): v is number[] => Array.isArray(v) && v.every(isCount);
const isString = (v: unknown): v is string => typeof v === "string";
const isBoolean = (v: unknown): v is boolean => typeof v === "boolean";
