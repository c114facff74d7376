/**
 * The small VAE's weights as safetensors with PyTorch names and layouts (what ships under
 * models/default-vae/), and training checkpoints: the same tensors under `param.`, Adam's moments
 * under `adam_m.` / `adam_v.` with the parameters' names, and the step count in the metadata.
 * Moments are read back with the model's own loader, so a checkpoint of another configuration
 * fails by tensor name like any other weights file.
 */

import { parseSafetensors, type Tensor, writeSafetensors } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { safetensorsSource } from "../sources.ts";
import { type Binding, toTorch } from "../weights.ts";
import type { SmallVaeConfig } from "./config.ts";
import { loadSmallVae, type SmallVae } from "./model.ts";
import type { AdamState } from "./train.ts";

/** The model's state dict as a safetensors file. */
export async function saveSmallVae(
  vae: SmallVae,
  metadata: Record<string, string> = {},
): Promise<Uint8Array<ArrayBuffer>> {
  return writeSafetensors(await stateDict(vae.bindings), metadata);
}

export async function saveCheckpoint(
  vae: SmallVae,
  adam: AdamState,
  metadata: Record<string, string>,
): Promise<Uint8Array<ArrayBuffer>> {
  const moments = (values: tf.Tensor[]) => vae.bindings.map((b, i) => ({ ...b, param: values[i] }));
  const tensors = {
    ...(await stateDict(vae.bindings, "param.")),
    ...(await stateDict(moments(adam.m), "adam_m.")),
    ...(await stateDict(moments(adam.v), "adam_v.")),
  };
  return writeSafetensors(tensors, { ...metadata, step: String(adam.step) });
}

/** A trainable model and its optimizer state, as saveCheckpoint wrote them. */
export async function loadCheckpoint(
  config: SmallVaeConfig,
  bytes: Uint8Array,
): Promise<{ vae: SmallVae; adam: AdamState; metadata: Record<string, string> }> {
  const { metadata } = parseSafetensors(bytes);
  const step = Number(metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new Error(`the checkpoint's step ${JSON.stringify(metadata.step)} is not valid`);
  }
  const load = (prefix: string, trainable: boolean) =>
    loadSmallVae(config, safetensorsSource(bytes, prefix), (t) => tf.variable(t, trainable));
  const vae = await load("param.", true);
  const moment = async (prefix: string) =>
    (await load(prefix, false)).bindings.map((b) => b.param as tf.Variable);
  const m = await moment("adam_m.");
  const v = await moment("adam_v.");
  return { vae, adam: { step, m, v }, metadata };
}

async function stateDict(bindings: Binding[], prefix = ""): Promise<Record<string, Tensor>> {
  const out: Record<string, Tensor> = {};
  for (const binding of bindings) {
    for (const [name, data] of await toTorch(binding)) {
      out[prefix + name] = { dtype: "F32", shape: [...binding.torchShape], data };
    }
  }
  return out;
}
