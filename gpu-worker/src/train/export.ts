/**
 * A trained run as a tokenizer (DESIGN.md, "Every artifact is content-addressed"): the manifest
 * (shared schema, the rectifier's architecture, training provenance) and its files, by manifest
 * path:
 *
 *   stats.safetensors       mean, std (C·H·W,) F32
 *   codebook.safetensors    codebook (G, K, D) F32
 *   rectifier.safetensors   the rectifier's state dict, PyTorch names (ReVQ's DCAEDecoder)
 *   vae.safetensors         the VAE's weights, when they travel with the tokenizer
 *
 * The manifest carries the run's held-out evaluation (metrics.ts) when something was held out.
 * The manifest's hash is the tokenizer's identity. Exporting the same run twice gives the same
 * bytes and hash (the creation time is when the last epoch ended), so a worker that exports again
 * after a lost lease makes the same tokenizer.
 */

import {
  canonicalJson,
  type FileRef,
  MANIFEST_SCHEMA_VERSION,
  manifestHash,
  parseManifest,
  sha256Hex,
  type Tensor,
  type TokenizerManifest,
  writeSafetensors,
} from "@revq/shared";
import workerPackage from "../../package.json" with { type: "json" };
import type { VaeSpec } from "../models/vae.ts";
import { toTorch } from "../models/weights.ts";
import type { Normalizer } from "./dataset.ts";
import { epochMetrics, tokenizerEvaluation } from "./metrics.ts";
import { readCodebook } from "./quantizer.ts";
import type { TrainRun } from "./run.ts";

export type ExportSpec = {
  name: string;
  description?: string;
  /** The VAE the latents came from; `weights` is filled in when vaeWeights is given. */
  vae: Omit<VaeSpec, "weights">;
  /** The VAE's weights file, to ship with the tokenizer (absent: the worker finds it by name). */
  vaeWeights?: Uint8Array;
  dataset: { name: string; images: number; description?: string };
};

export type ExportedTokenizer = {
  manifest: TokenizerManifest;
  hash: string;
  /** The canonical JSON whose SHA-256 is the hash. */
  manifestBytes: Uint8Array;
  /** File bytes by manifest path. */
  files: Map<string, Uint8Array>;
};

export async function exportTokenizer(
  run: TrainRun,
  normalizer: Normalizer,
  spec: ExportSpec,
): Promise<ExportedTokenizer> {
  const { config } = run;
  const last = run.history.at(-1);
  if (!last || run.epoch < config.epochs) {
    throw new Error(
      `the run has finished ${run.epoch} of ${config.epochs} epochs: nothing to export yet`,
    );
  }
  const shape = spec.vae.latentShape;
  if (
    shape.channels !== config.latentShape.channels ||
    shape.height !== config.latentShape.height ||
    shape.width !== config.latentShape.width
  ) {
    throw new Error("the VAE's latent shape is not the one the run was trained on");
  }
  const files = new Map<string, Uint8Array>();
  const ref = async (path: string, bytes: Uint8Array, tensors?: string[]): Promise<FileRef> => {
    files.set(path, bytes);
    return {
      path,
      bytes: bytes.length,
      sha256: await sha256Hex(bytes),
      ...(tensors ? { tensors } : {}),
    };
  };
  const dims = normalizer.mean.length;
  const stats = await ref(
    "stats.safetensors",
    writeSafetensors({
      mean: { dtype: "F32", shape: [dims], data: normalizer.mean },
      std: { dtype: "F32", shape: [dims], data: normalizer.std },
    }),
    ["mean", "std"],
  );
  const codebook = await readCodebook(run.state.quantizer);
  const codebookRef = await ref(
    "codebook.safetensors",
    writeSafetensors({
      codebook: {
        dtype: "F32",
        shape: [codebook.groups, codebook.codes, codebook.dim],
        data: codebook.data,
      },
    }),
    ["codebook"],
  );
  const rectifierTensors: Record<string, Tensor> = {};
  for (const binding of run.state.rectifier.bindings) {
    for (const [name, data] of await toTorch(binding)) {
      rectifierTensors[name] = { dtype: "F32", shape: binding.torchShape, data };
    }
  }
  const rectifierRef = await ref("rectifier.safetensors", writeSafetensors(rectifierTensors));
  const vaeWeights = spec.vaeWeights ? await ref("vae.safetensors", spec.vaeWeights) : undefined;

  const r = config.rectifier;
  const evaluation = tokenizerEvaluation(last, config);
  const manifest = parseManifest({
    schema: MANIFEST_SCHEMA_VERSION,
    name: spec.name,
    ...(spec.description ? { description: spec.description } : {}),
    vae: { ...spec.vae, ...(vaeWeights ? { weights: vaeWeights } : {}) },
    quantizer: {
      tokens: config.tokens,
      groups: config.groups,
      codeDim: codebook.dim,
      codesPerGroup: config.codes,
    },
    rectifier: {
      architecture: "dcae-decoder-stage",
      channels: r.channels,
      blocks: r.blocks,
      attentionHeadDim: r.headDim,
      qkvMultiscales: r.multiscales,
      norm: "rms_norm",
      act: "silu",
      ...(r.residual ? { residual: true } : {}),
    },
    files: { stats, codebook: codebookRef, rectifier: rectifierRef },
    training: {
      dataset: spec.dataset,
      epochs: config.epochs,
      batchSize: config.batchSize,
      seed: config.seed,
      learningRates: config.learningRates,
      createdAt: last.endedAt,
      software: { name: "revq", version: workerPackage.version },
      metrics: epochMetrics(last),
    },
    ...(evaluation ? { evaluation } : {}),
  });
  const manifestBytes = new TextEncoder().encode(canonicalJson(manifest));
  return { manifest, hash: await manifestHash(manifest), manifestBytes, files };
}
