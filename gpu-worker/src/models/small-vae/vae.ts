/**
 * The small VAE behind the worker's Vae interface: manifests with `vae.kind: "small-conv"`, their
 * `vae.config` a SmallVaeConfig (models/default-vae/manifest.json has the entry to copy).
 * The model computes channels-last; ChannelsLastVae converts to the interface's orders.
 */
import { ChannelsLastVae } from "../channels-last-vae.ts";
import type { Vae, VaeSpec } from "../vae.ts";
import type { TensorSource } from "../weights.ts";
import { parseSmallVaeConfig, type SmallVaeConfig, spatialCompression } from "./config.ts";
import { decode, disposeSmallVae, encode, loadSmallVae } from "./model.ts";

export async function loadSmallConvVae(spec: VaeSpec, weights: TensorSource): Promise<Vae> {
  if (!spec.config) throw new Error(`small VAE ${spec.name}: the manifest gives no vae.config`);
  const config = parseSmallVaeConfig(spec.config as Record<string, unknown>);
  checkShapes(spec, config);
  const model = await loadSmallVae(config, weights);
  return new ChannelsLastVae(
    {
      encode: (x) => encode(model, x),
      decode: (z) => decode(model, z),
      dispose: () => disposeSmallVae(model),
    },
    spec.inputResolution,
    spec.latentShape,
  );
}

/** The manifest's sizes must be what this configuration computes, or tokens would be nonsense. */
function checkShapes(spec: VaeSpec, config: SmallVaeConfig): void {
  const f = spatialCompression(config);
  const { height, width } = spec.inputResolution;
  const { channels, height: h, width: w } = spec.latentShape;
  if (height % f !== 0 || width % f !== 0) {
    throw new Error(`small VAE ${spec.name}: ${height}×${width} is not a multiple of ${f}`);
  }
  if (channels !== config.latentChannels || h !== height / f || w !== width / f) {
    throw new Error(
      `small VAE ${spec.name}: ${height}×${width} images give latents of ${config.latentChannels}×${height / f}×${width / f}; the manifest says ${channels}×${h}×${w}`,
    );
  }
}
