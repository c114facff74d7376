/**
 * The small convolutional VAE the repository ships (docs/default-vae.md): a DC-AE-shaped
 * autoencoder of ResBlocks, small enough to train on a CPU. Fully convolutional: the manifest's
 * input resolution and this configuration together give the latent shape.
 */

export type SmallVaeConfig = {
  latentChannels: number;
  /** Channels of each stage; stage i works at 1/2^(i+1) of the image side. */
  channels: number[];
  /** ResBlocks of each stage, encoder and decoder. */
  encoderLayers: number[];
  decoderLayers: number[];
};

/** The shipped model: 64×64 RGB → 8×16×16 (2048 values, as the paper's DC-AE latents). */
export const DEFAULT_SMALL_VAE: SmallVaeConfig = {
  latentChannels: 8,
  channels: [48, 96],
  encoderLayers: [1, 2],
  decoderLayers: [1, 3],
};

/** Image side / latent side: a pixel-unshuffle stem, then one ×2 downsampling per later stage. */
export function spatialCompression(config: SmallVaeConfig): number {
  return 2 ** config.channels.length;
}

/** The configuration as the manifest's `vae.config` holds it, checked for what the model needs. */
export function parseSmallVaeConfig(json: Record<string, unknown>): SmallVaeConfig {
  const counts = (key: string, min: number): number[] => {
    const v = json[key];
    if (
      !Array.isArray(v) ||
      v.length === 0 ||
      !v.every((x) => Number.isSafeInteger(x) && x >= min)
    ) {
      throw new Error(
        `small VAE config: ${key} = ${JSON.stringify(v)} must list integers ≥ ${min}`,
      );
    }
    return v;
  };
  const latent = json.latentChannels;
  if (!Number.isSafeInteger(latent) || (latent as number) < 1) {
    throw new Error(`small VAE config: latentChannels = ${JSON.stringify(latent)} is not valid`);
  }
  const config: SmallVaeConfig = {
    latentChannels: latent as number,
    channels: counts("channels", 1),
    encoderLayers: counts("encoderLayers", 0),
    decoderLayers: counts("decoderLayers", 0),
  };
  checkSmallVaeConfig(config);
  return config;
}

/** The shortcuts average or repeat whole runs of channels, so the widths must divide evenly. */
export function checkSmallVaeConfig(config: SmallVaeConfig): void {
  const { channels, latentChannels } = config;
  const stages = channels.length;
  if (config.encoderLayers.length !== stages || config.decoderLayers.length !== stages) {
    throw new Error("small VAE config: give encoder and decoder layers for every stage");
  }
  const last = channels[stages - 1];
  if (last % latentChannels !== 0) {
    throw new Error(`small VAE config: ${last} channels are not a multiple of ${latentChannels}`);
  }
  for (let i = 1; i < stages; i++) {
    if ((4 * channels[i - 1]) % channels[i] !== 0 || channels[i] % 4 !== 0) {
      throw new Error(
        `small VAE config: stage ${i} has ${channels[i]} channels; it must be a multiple of 4 dividing 4·${channels[i - 1]}`,
      );
    }
  }
}
