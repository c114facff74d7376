/**
 * What the pipelines need of a VAE, whatever its architecture: a fixed input resolution, a latent
 * shape, and encode/decode between images and latents. Data crosses this boundary as flat
 * Float32Arrays in the method's own orders, so that callers never see the model's tensor layout:
 *
 * - images: `count` × H × W × 3, row-major (interleaved RGB, as image codecs give them), in [-1, 1];
 * - latents: `count` × C × H × W, row-major, which cut into consecutive chunks are the tokens.
 *
 * An implementation converts to its own layout inside (channels-last-vae.ts for NHWC models).
 */
import type { LatentShape, TokenizerManifest } from "@revq/shared";
import { type DcaeConfig, parseDcaeConfig } from "../models/dcae/config.ts";
import { decode, disposeDcae, encode, loadDcae } from "../models/dcae/model.ts";
import { loadSmallConvVae } from "../models/small-vae/vae.ts";
import type { TensorSource } from "../models/weights.ts";
import { ChannelsLastVae } from "./channels-last-vae.ts";

export type ImageSize = { height: number; width: number };

export interface Vae {
  readonly inputResolution: ImageSize;
  readonly latentShape: LatentShape;
  /** `count` images (count·H·W·3 values in [-1, 1]) → `count` latents (count·C·H·W). */
  encode(images: Float32Array, count: number): Promise<Float32Array>;
  /** `count` latents → `count` images, in [-1, 1] up to the model's overshoot (not clamped). */
  decode(latents: Float32Array, count: number): Promise<Float32Array>;
  /** Frees the weights on the device. */
  dispose(): void;
}

export type VaeSpec = TokenizerManifest["vae"];

/** The VAE a manifest describes, with its weights from `weights`. */
export async function loadVae(spec: VaeSpec, weights: TensorSource): Promise<Vae> {
  switch (spec.kind) {
    case "dcae":
      return loadDcaeVae(spec, weights);
    case "small-conv":
      return loadSmallConvVae(spec, weights);
  }
}

async function loadDcaeVae(spec: VaeSpec, weights: TensorSource): Promise<Vae> {
  if (!spec.config) throw new Error(`DC-AE ${spec.name}: the manifest gives no vae.config`);
  const config = parseDcaeConfig(spec.config as Record<string, unknown>);
  checkShapes(spec, config);
  const model = await loadDcae(config, weights);
  return new ChannelsLastVae(
    {
      encode: (x) => encode(model.encoder, x),
      decode: (z) => decode(model.decoder, z),
      dispose: () => disposeDcae(model),
    },
    spec.inputResolution,
    spec.latentShape,
  );
}

/** The manifest's sizes must be what this configuration computes, or tokens would be nonsense. */
function checkShapes(spec: VaeSpec, config: DcaeConfig): void {
  const f = config.spatialCompression;
  const { height, width } = spec.inputResolution;
  const expected = {
    channels: config.encoder.latentChannels,
    height: height / f,
    width: width / f,
  };
  const actual = spec.latentShape;
  if (
    expected.channels !== actual.channels ||
    expected.height !== actual.height ||
    expected.width !== actual.width
  ) {
    throw new Error(
      `DC-AE ${spec.name}: ${height}×${width} images give latents of ${expected.channels}×${expected.height}×${expected.width}; the manifest says ${actual.channels}×${actual.height}×${actual.width}`,
    );
  }
}
