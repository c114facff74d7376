/**
 * Training checkpoints: everything a run needs to go on exactly where it stopped, written after
 * every epoch. Two objects in a store (a folder for the CLI, the job's bucket prefix for the
 * worker):
 *
 *   state-{epoch mod 2}.safetensors   quantizer.embeddings (G,K,D); rectifier.<PyTorch name>;
 *                                     adam.{m,v}.quantizer.embeddings; adam.{m,v}.rectifier.<name>
 *   checkpoint.json                   format, epoch, config, dataset identity, RNG state, optimizer
 *                                     steps, epoch history, and the tensors file's size and SHA-256
 *
 * The tensors go first, into the slot the last checkpoint does not use, and checkpoint.json last:
 * a crash in between leaves the previous checkpoint whole, and storage stays at two states. Usage
 * counts are not kept: a checkpoint is taken right after the reset that zeroes them.
 */

import {
  ASSIGNMENTS,
  createCodebook,
  parseSafetensors,
  quantLayout,
  RECTIFIER_LOSS_WEIGHTINGS,
  RECTIFIER_LOSSES,
  Rng,
  readTensor,
  sha256Hex,
  type Tensor,
  writeSafetensors,
} from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import * as z from "zod";
import { loadRectifier, type Rectifier } from "../models/rectifier.ts";
import { safetensorsSource } from "../models/sources.ts";
import { type Binding, toTorch } from "../models/weights.ts";
import { momentsOf, setMoments } from "./adamw.ts";
import { checkTrainConfig, type TrainConfig } from "./config.ts";
import { createQuantizer } from "./quantizer.ts";
import type { EpochRecord, TrainRun } from "./run.ts";
import { createTrainState, fillCounts } from "./step.ts";
import type { BlobStore } from "./store.ts";

export type CheckpointStore = BlobStore;

export const CHECKPOINT_FORMAT = "revq.train-checkpoint/v1";
export const CHECKPOINT_INDEX = "checkpoint.json";

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const int = z.int().min(0);
const TrainConfigJson = z.strictObject({
  latentShape: z.strictObject({ channels: int, height: int, width: int }),
  tokens: int,
  groups: int,
  codes: int,
  rectifier: z.strictObject({
    latentChannels: int,
    channels: int,
    blocks: int,
    headDim: int,
    multiscales: z.array(int),
    residual: z.literal(true).optional(),
  }),
  epochs: int,
  batchSize: int,
  learningRates: z.strictObject({ quantizer: z.number(), rectifier: z.number() }),
  rectifierWeightDecay: z.number(),
  rectifierLossWeighting: z.enum(RECTIFIER_LOSS_WEIGHTINGS).exclude(["uniform"]).optional(),
  rectifierLoss: z.enum(RECTIFIER_LOSSES).exclude(["latent"]).optional(),
  reset: z.strictObject({ ratio: z.number(), noise: z.number() }),
  seed: int,
  assignment: z.enum(ASSIGNMENTS),
});

const CheckpointIndex = z.strictObject({
  format: z.literal(CHECKPOINT_FORMAT),
  epoch: int,
  config: TrainConfigJson,
  dataset: z.string(),
  rng: z.strictObject({
    s: z.tuple([int, int, int, int]),
    spareNormal: z.number().nullable(),
  }),
  optimizerSteps: z.tuple([int, int]),
  history: z.array(z.record(z.string(), z.unknown())),
  tensors: z.strictObject({
    path: z.string(),
    bytes: int,
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
});
type CheckpointIndex = z.infer<typeof CheckpointIndex>;

/**
 * Saves the run after its last completed epoch. `dataset` names the training data (the latent
 * shards' identity), so a checkpoint is never resumed on other data.
 */
export async function saveCheckpoint(
  store: CheckpointStore,
  run: TrainRun,
  dataset: string,
): Promise<void> {
  const bytes = await stateTensors(run);
  const path = `state-${run.epoch % 2}.safetensors`;
  await store.write(path, bytes);
  const index: CheckpointIndex = {
    format: CHECKPOINT_FORMAT,
    epoch: run.epoch,
    config: run.config,
    dataset,
    rng: run.rng.state(),
    optimizerSteps: [run.state.optimizer.groups[0].step, run.state.optimizer.groups[1].step],
    history: run.history as unknown as Record<string, unknown>[],
    tensors: { path, bytes: bytes.length, sha256: await sha256Hex(bytes) },
  };
  await store.write(
    CHECKPOINT_INDEX,
    new TextEncoder().encode(`${JSON.stringify(index, null, 1)}\n`),
  );
}

async function stateTensors(run: TrainRun): Promise<Uint8Array> {
  const { state } = run;
  const [quant, rect] = state.optimizer.groups;
  const embeddingsShape = state.quantizer.embeddings.shape;
  const tensors: Record<string, Tensor> = {};
  const f32 = async (t: tf.Tensor) => ({
    dtype: "F32" as const,
    shape: embeddingsShape,
    data: (await t.data()) as Float32Array,
  });
  const quantMoments = momentsOf(quant);
  const rectMoments = momentsOf(rect);
  try {
    tensors["quantizer.embeddings"] = await f32(state.quantizer.embeddings);
    tensors["adam.m.quantizer.embeddings"] = await f32(quantMoments.m[0]);
    tensors["adam.v.quantizer.embeddings"] = await f32(quantMoments.v[0]);
    const bindings = state.rectifier.bindings;
    await addTorch(
      tensors,
      "rectifier.",
      bindings,
      bindings.map((b) => b.param),
    );
    await addTorch(tensors, "adam.m.rectifier.", bindings, rectMoments.m);
    await addTorch(tensors, "adam.v.rectifier.", bindings, rectMoments.v);
  } finally {
    tf.dispose([quantMoments, rectMoments].flatMap(({ m, v }) => [...m, ...v]));
  }
  return writeSafetensors(tensors, { format: CHECKPOINT_FORMAT, epoch: String(run.epoch) });
}

/** values[i] (a parameter, or a tensor of its shape) under binding i's PyTorch names. */
async function addTorch(
  out: Record<string, Tensor>,
  prefix: string,
  bindings: Binding[],
  values: tf.Tensor[],
) {
  for (const [i, binding] of bindings.entries()) {
    for (const [name, data] of await toTorch(binding, values[i])) {
      out[prefix + name] = { dtype: "F32", shape: binding.torchShape, data };
    }
  }
}

/**
 * The run saved in `store`, or null when it holds no checkpoint. A checkpoint that is damaged,
 * of another format, or made on other data is a CheckpointError that says which.
 */
export async function loadCheckpoint(
  store: CheckpointStore,
  dataset?: string,
): Promise<TrainRun | null> {
  const indexBytes = await store.read(CHECKPOINT_INDEX);
  if (!indexBytes) return null;
  const index = parseIndex(indexBytes);
  if (dataset !== undefined && index.dataset !== dataset) {
    throw new CheckpointError(
      `the checkpoint was made on dataset ${index.dataset}, not ${dataset}: it cannot be resumed on this data`,
    );
  }
  const bytes = await store.read(index.tensors.path);
  if (!bytes)
    throw new CheckpointError(`${index.tensors.path}, named by ${CHECKPOINT_INDEX}, is missing`);
  if (bytes.length !== index.tensors.bytes || (await sha256Hex(bytes)) !== index.tensors.sha256) {
    throw new CheckpointError(
      `${index.tensors.path} does not match ${CHECKPOINT_INDEX} (size or SHA-256): the checkpoint is damaged`,
    );
  }
  try {
    return await restore(index, bytes);
  } catch (error) {
    throw new CheckpointError(`${index.tensors.path} does not load: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function parseIndex(bytes: Uint8Array): CheckpointIndex {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new CheckpointError(`${CHECKPOINT_INDEX} is not JSON: ${(error as Error).message}`);
  }
  const parsed = CheckpointIndex.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `${i.path.join(".") || "(root)"}: ${i.message}`,
    );
    throw new CheckpointError(
      `${CHECKPOINT_INDEX} is not a ${CHECKPOINT_FORMAT} checkpoint: ${problems.join("; ")}`,
    );
  }
  try {
    checkTrainConfig(parsed.data.config);
  } catch (error) {
    throw new CheckpointError(`${CHECKPOINT_INDEX}: ${(error as Error).message}`);
  }
  return parsed.data;
}

async function restore(index: CheckpointIndex, bytes: Uint8Array): Promise<TrainRun> {
  const config: TrainConfig = index.config;
  const layout = quantLayout(config.latentShape, config.tokens, config.groups);
  const file = parseSafetensors(bytes);
  const shape: [number, number, number] = [layout.groups, config.codes, layout.codeDim];
  const codebookTensor = (name: string) => {
    const info = file.tensors.get(name);
    if (info?.dtype !== "F32" || info.shape.join() !== shape.join()) {
      throw new Error(`${name} must be an F32 tensor of shape [${shape}]`);
    }
    return readTensor(file, name).data as Float32Array;
  };
  const embeddings = codebookTensor("quantizer.embeddings");
  const moments = [
    codebookTensor("adam.m.quantizer.embeddings"),
    codebookTensor("adam.v.quantizer.embeddings"),
  ];
  const trainable = (t: tf.Tensor) => tf.variable(t);
  const rectifier = await loadRectifier(
    config.rectifier,
    safetensorsSource(bytes, "rectifier."),
    trainable,
  );
  const rectMoments: Rectifier[] = [];
  try {
    for (const m of ["m", "v"]) {
      rectMoments.push(
        await loadRectifier(config.rectifier, safetensorsSource(bytes, `adam.${m}.rectifier.`)),
      );
    }
  } catch (error) {
    tf.dispose(
      [...rectifier.bindings, ...rectMoments.flatMap((r) => r.bindings)].map((b) => b.param),
    );
    throw error;
  }
  const state = createTrainState({
    latentShape: config.latentShape,
    quantizer: createQuantizer(
      layout,
      createCodebook(layout.groups, config.codes, layout.codeDim, embeddings),
    ),
    rectifier,
    learningRates: config.learningRates,
    rectifierWeightDecay: config.rectifierWeightDecay,
    assignment: config.assignment,
  });
  const [quant, rect] = state.optimizer.groups;
  tf.tidy(() => setMoments(quant, [tf.tensor1d(moments[0])], [tf.tensor1d(moments[1])]));
  const [m, v] = rectMoments.map((r) => r.bindings.map((b) => b.param));
  setMoments(rect, m, v);
  tf.dispose([...m, ...v]);
  [quant.step, rect.step] = index.optimizerSteps;
  fillCounts(state, 0);
  return {
    config,
    state,
    rng: Rng.fromState(index.rng),
    epoch: index.epoch,
    history: index.history as unknown as EpochRecord[],
  };
}
