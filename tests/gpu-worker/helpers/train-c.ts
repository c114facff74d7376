import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Assignment,
  createCodebook,
  type LatentShape,
  type QuantLayout,
  quantLayout,
} from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import {
  loadRectifier,
  type Rectifier,
  rectifierConfigFromRevq,
} from "../../../gpu-worker/src/models/rectifier.ts";
import { safetensorsSource } from "../../../gpu-worker/src/models/sources.ts";
import { toTorch } from "../../../gpu-worker/src/models/weights.ts";
import { disposeAdamW } from "../../../gpu-worker/src/train/adamw.ts";
import { createQuantizer, disposeQuantizer } from "../../../gpu-worker/src/train/quantizer.ts";
import { createTrainState, type TrainState } from "../../../gpu-worker/src/train/step.ts";
import { type Fixture, loadFixture } from "../../helpers/fixtures.ts";

/** An instance of fixture C (fixtures README §6) with what a training state needs from it. */
export type TrainInstance = {
  name: string;
  C: Fixture;
  bytes: Uint8Array;
  latent: LatentShape;
  layout: QuantLayout;
  codes: number;
  steps: number;
  optimizer: { param_groups: { lr: number; weight_decay: number }[] };
};

export function trainInstance(name: string, dir: string): TrainInstance {
  const C = loadFixture(name, name, dir);
  const q = C.json.quantizer as Record<string, number>;
  const [channels, height, width] = C.json.input_data_size as number[];
  const latent = { channels, height, width };
  return {
    name,
    C,
    bytes: new Uint8Array(readFileSync(join(dir, `${name}.safetensors`))),
    latent,
    layout: quantLayout(latent, q.tokens_per_data, q.num_group),
    codes: q.num_code,
    steps: C.json.num_steps as number,
    optimizer: C.json.optimizer as TrainInstance["optimizer"],
  };
}

/** The state dict prefix a step starts from: `init`, then the reference's `after_step{s-1}`. */
export const startOf = (step: number) => (step === 1 ? "init" : `after_step${step - 1}`);

/** A training state with the codebook and rectifier of `${start}.*`, AdamW fresh. */
export async function stateAt(
  inst: TrainInstance,
  start: string,
  assignment: Assignment,
): Promise<TrainState> {
  const { C, layout } = inst;
  const codebook = createCodebook(
    layout.groups,
    inst.codes,
    layout.codeDim,
    C.f32(`${start}.quantizer.embeddings`),
  );
  const config = rectifierConfigFromRevq(C.json.rectifier as Record<string, unknown>);
  const rectifier = await loadRectifier(
    config,
    safetensorsSource(inst.bytes, `${start}.decoder.`),
    (t) => tf.variable(t),
  );
  const [quantizer, decoder] = inst.optimizer.param_groups;
  return createTrainState({
    latentShape: inst.latent,
    quantizer: createQuantizer(layout, codebook),
    rectifier,
    learningRates: { quantizer: quantizer.lr, rectifier: decoder.lr },
    rectifierWeightDecay: decoder.weight_decay,
    assignment,
  });
}

export function disposeState(state: TrainState): void {
  disposeQuantizer(state.quantizer);
  tf.dispose(state.rectifier.bindings.map((b) => b.param));
  disposeAdamW(state.optimizer);
  state.counts.dispose();
}

/** Every rectifier tensor (parameter, gradient or moment) by its PyTorch name, `decoder.` first. */
export async function named(
  r: Rectifier,
  tensors: tf.Tensor[],
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [i, binding] of r.bindings.entries()) {
    for (const [name, data] of await toTorch(binding, tensors[i])) out.set(`decoder.${name}`, data);
  }
  return out;
}
