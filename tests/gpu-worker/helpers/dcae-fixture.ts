import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { parseDcaeConfig } from "../../../gpu-worker/src/models/dcae/config.ts";
import { type Dcae, loadDcae } from "../../../gpu-worker/src/models/dcae/model.ts";
import { safetensorsSource } from "../../../gpu-worker/src/models/sources.ts";
import { FIXTURES_DIR } from "../../helpers/fixtures.ts";

/** fixtures D: the tiny AutoencoderDC's config.json and weights, loaded on the current backend. */
export async function loadFixtureDcae(): Promise<Dcae> {
  const json = JSON.parse(readFileSync(join(FIXTURES_DIR, "dcae_config.json"), "utf8"));
  const bytes = new Uint8Array(readFileSync(join(FIXTURES_DIR, "dcae_weights.safetensors")));
  return loadDcae(parseDcaeConfig(json), safetensorsSource(bytes));
}

export function nchwToNhwc(data: Float32Array, shape: readonly number[]): tf.Tensor4D {
  const [b, c, h, w] = shape;
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, [b, c, h, w]), [0, 2, 3, 1]));
}

/** The data of an NHWC tensor in NCHW order; disposes the tensor (an async read, for webgpu). */
export async function toNchw(t: tf.Tensor): Promise<Float32Array> {
  const transposed = tf.transpose(t, [0, 3, 1, 2]);
  const data = (await transposed.data()) as Float32Array;
  tf.dispose([t, transposed]);
  return data;
}
