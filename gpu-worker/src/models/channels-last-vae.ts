/**
 * The Vae interface over a model that computes channels-last (NHWC), as DC-AE and the small VAE
 * do: it checks sizes, converts latents between the model's NHWC and the token order C-H-W, and
 * reads results back asynchronously (webgpu cannot read synchronously).
 */
import type { LatentShape } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import type { ImageSize, Vae } from "./vae.ts";

/** The model's two halves and how to free it. */
export type ChannelsLastModel = {
  /** [B,H,W,3] images → [B,h,w,C] latents. */
  encode(x: tf.Tensor4D): tf.Tensor4D;
  /** [B,h,w,C] latents → [B,H,W,3] images. */
  decode(z: tf.Tensor4D): tf.Tensor4D;
  dispose(): void;
};

export class ChannelsLastVae implements Vae {
  readonly inputResolution: ImageSize;
  readonly latentShape: LatentShape;
  private readonly model: ChannelsLastModel;

  constructor(model: ChannelsLastModel, inputResolution: ImageSize, latentShape: LatentShape) {
    this.model = model;
    this.inputResolution = inputResolution;
    this.latentShape = latentShape;
  }

  encode(images: Float32Array, count: number): Promise<Float32Array> {
    const { height, width } = this.inputResolution;
    const { channels: c, height: h, width: w } = this.latentShape;
    checkLength(images, count, height * width * 3, "images");
    const latents = tf.tidy(() => {
      const z = this.model.encode(tf.tensor4d(images, [count, height, width, 3]));
      return tf.transpose(z, [0, 3, 1, 2]); // NHWC → NCHW: the token order
    });
    return readAndDispose(latents, count * c * h * w);
  }

  decode(latents: Float32Array, count: number): Promise<Float32Array> {
    const { height, width } = this.inputResolution;
    const { channels: c, height: h, width: w } = this.latentShape;
    checkLength(latents, count, c * h * w, "latents");
    const images = tf.tidy(() => {
      const z = tf.transpose(tf.tensor4d(latents, [count, c, h, w]), [0, 2, 3, 1]);
      return this.model.decode(z as tf.Tensor4D);
    });
    return readAndDispose(images, count * height * width * 3);
  }

  decodeTensor(latents: tf.Tensor4D): tf.Tensor4D {
    const { channels: c, height: h, width: w } = this.latentShape;
    const [, lh, lw, lc] = latents.shape;
    if (lh !== h || lw !== w || lc !== c) {
      throw new RangeError(`latents of ${latents.shape.join("×")} are not (B, ${h}, ${w}, ${c})`);
    }
    return this.model.decode(latents);
  }

  dispose(): void {
    this.model.dispose();
  }
}

function checkLength(data: Float32Array, count: number, each: number, what: string): void {
  if (!Number.isInteger(count) || count < 1 || data.length !== count * each) {
    throw new RangeError(`${count} ${what} need ${count * each} values, got ${data.length}`);
  }
}

/** Reads a tensor asynchronously (webgpu cannot read synchronously) and frees it. */
export async function readAndDispose(t: tf.Tensor, expected: number): Promise<Float32Array> {
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
