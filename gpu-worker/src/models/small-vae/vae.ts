/**
 * The small VAE behind the worker's Vae interface: manifests with `vae.kind: "small-conv"`, their
 * `vae.config` a SmallVaeConfig (models/default-vae/manifest.json has the entry to copy).
 * Converts between the interface's orders (interleaved RGB images, C-H-W latents) and the
 * model's channels-last tensors. Its small helpers are its own rather than imported from
 * pipeline/vae.ts, which imports this module: no import cycle.
 */

import type { LatentShape } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import type { ImageSize, Vae, VaeSpec } from "../../pipeline/vae.ts";
import type { TensorSource } from "../weights.ts";
import { parseSmallVaeConfig, type SmallVaeConfig, spatialCompression } from "./config.ts";
import { decode, disposeSmallVae, encode, loadSmallVae, type SmallVae } from "./model.ts";

export async function loadSmallConvVae(spec: VaeSpec, weights: TensorSource): Promise<Vae> {
  if (!spec.config) throw new Error(`small VAE ${spec.name}: the manifest gives no vae.config`);
  const config = parseSmallVaeConfig(spec.config as Record<string, unknown>);
  checkShapes(spec, config);
  return new SmallConvVae(await loadSmallVae(config, weights), spec);
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

class SmallConvVae implements Vae {
  readonly inputResolution: ImageSize;
  readonly latentShape: LatentShape;
  private readonly model: SmallVae;

  constructor(model: SmallVae, spec: VaeSpec) {
    this.model = model;
    this.inputResolution = spec.inputResolution;
    this.latentShape = spec.latentShape;
  }

  encode(images: Float32Array, count: number): Promise<Float32Array> {
    const { height, width } = this.inputResolution;
    const { channels: c, height: h, width: w } = this.latentShape;
    checkLength(images, count, height * width * 3, "images");
    const latents = tf.tidy(() => {
      const z = encode(this.model, tf.tensor4d(images, [count, height, width, 3]));
      return tf.transpose(z, [0, 3, 1, 2]); // NHWC → NCHW: the token order
    });
    return read(latents, count * c * h * w);
  }

  decode(latents: Float32Array, count: number): Promise<Float32Array> {
    const { height, width } = this.inputResolution;
    const { channels: c, height: h, width: w } = this.latentShape;
    checkLength(latents, count, c * h * w, "latents");
    const images = tf.tidy(() => {
      const z = tf.transpose(tf.tensor4d(latents, [count, c, h, w]), [0, 2, 3, 1]);
      return decode(this.model, z as tf.Tensor4D);
    });
    return read(images, count * height * width * 3);
  }

  dispose(): void {
    disposeSmallVae(this.model);
  }
}

function checkLength(data: Float32Array, count: number, each: number, what: string): void {
  if (!Number.isInteger(count) || count < 1 || data.length !== count * each) {
    throw new RangeError(`${count} ${what} need ${count * each} values, got ${data.length}`);
  }
}

/** Reads asynchronously (webgpu cannot read synchronously) and frees the tensor. */
async function read(t: tf.Tensor, expected: number): Promise<Float32Array> {
  try {
    const data = (await t.data()) as Float32Array;
    if (data.length !== expected) {
      throw new Error(`the model gave ${data.length} values, expected ${expected}`);
    }
    return data;
  } finally {
    t.dispose();
  }
}
