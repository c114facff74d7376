/**
 * Published DC-AE configurations, as their diffusers `config.json`. dc-ae-f32c32-sana-1.1 is the
 * ReVQ paper's VAE: 256×256 RGB → 32×8×8. It has the architecture of sana-1.0 (diffusers'
 * conversion script) with a retrained decoder.
 */

import { type DcaeConfig, parseDcaeConfig } from "./config.ts";

const F32C32_SANA = {
  _class_name: "AutoencoderDC",
  in_channels: 3,
  latent_channels: 32,
  attention_head_dim: 32,
  encoder_block_types: [
    "ResBlock",
    "ResBlock",
    "ResBlock",
    "EfficientViTBlock",
    "EfficientViTBlock",
    "EfficientViTBlock",
  ],
  decoder_block_types: [
    "ResBlock",
    "ResBlock",
    "ResBlock",
    "EfficientViTBlock",
    "EfficientViTBlock",
    "EfficientViTBlock",
  ],
  encoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
  decoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
  encoder_layers_per_block: [2, 2, 2, 3, 3, 3],
  decoder_layers_per_block: [3, 3, 3, 3, 3, 3],
  encoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  decoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  upsample_block_type: "interpolate",
  downsample_block_type: "Conv",
  decoder_norm_types: "rms_norm",
  decoder_act_fns: "silu",
  encoder_out_shortcut: true,
  decoder_in_shortcut: true,
  decoder_conv_act_fn: "relu",
  scaling_factor: 0.41407,
};

export const DCAE_PRESETS = {
  "dc-ae-f32c32-sana-1.1": {
    repository: "mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers",
    config: F32C32_SANA,
  },
} as const;

export type DcaePresetName = keyof typeof DCAE_PRESETS;

export function dcaePreset(name: DcaePresetName): DcaeConfig {
  return parseDcaeConfig(DCAE_PRESETS[name].config);
}
