/**
 * DC-AE behind the worker's Vae interface: manifests with `vae.kind: "dcae"`, their `vae.config`
 * a diffusers config.json. The model computes channels-last; ChannelsLastVae converts to the
 * interface's orders.
 */
import { ChannelsLastVae } from "../channels-last-vae.ts";
import type { Vae, VaeSpec } from "../vae.ts";
import type { TensorSource } from "../weights.ts";
import { type DcaeConfig, parseDcaeConfig } from "./config.ts";
import { decode, disposeDcae, encode, loadDcae } from "./model.ts";

export async function loadDcaeVae(spec: VaeSpec, weights: TensorSource): Promise<Vae> {
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
