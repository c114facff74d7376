import { parseManifest, parseSafetensors, Rng, readTensor, sha256Hex } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { disposeRectifier, loadRectifier, rectify } from "../../gpu-worker/src/models/rectifier.ts";
import { safetensorsSource } from "../../gpu-worker/src/models/sources.ts";
import { toTorch } from "../../gpu-worker/src/models/weights.ts";
import { momentsOf } from "../../gpu-worker/src/train/adamw.ts";
import {
  CHECKPOINT_INDEX,
  type CheckpointStore,
  loadCheckpoint,
  saveCheckpoint,
} from "../../gpu-worker/src/train/checkpoint.ts";
import type { TrainConfig } from "../../gpu-worker/src/train/config.ts";
import {
  gatherLatents,
  latentSet,
  latentStatistics,
  normalizeLatents,
} from "../../gpu-worker/src/train/dataset.ts";
import { exportTokenizer } from "../../gpu-worker/src/train/export.ts";
import { extractLatents } from "../../gpu-worker/src/train/extract.ts";
import { prepareTrainData } from "../../gpu-worker/src/train/prepare.ts";
import { readCodebook } from "../../gpu-worker/src/train/quantizer.ts";
import {
  disposeRun,
  type EpochRecord,
  runEpoch,
  startRun,
  type TrainData,
  type TrainRun,
  train,
} from "../../gpu-worker/src/train/run.ts";
import { readCounts } from "../../gpu-worker/src/train/step.ts";
import { syntheticPixels } from "../e2e/support/tiny-tokenizer.ts";
import { runOn } from "./helpers/backends.ts";
import { loadFixtureVae } from "./helpers/train-vae.ts";

// A tiny run of the real loop: 4×4×4 latents (16 tokens of 4, one group each, 32 codes) with
// fixtures C's rectifier size, 96 training latents in batches of 16, 16 held out.
const LATENT = { channels: 4, height: 4, width: 4 };
const DIMS = 64;

const CONFIG: TrainConfig = {
  latentShape: LATENT,
  tokens: 16,
  groups: 16,
  codes: 32,
  rectifier: { latentChannels: 4, channels: 32, blocks: 1, headDim: 8, multiscales: [5] },
  epochs: 3,
  batchSize: 16,
  learningRates: { quantizer: 0.01, rectifier: 0.0005 },
  rectifierWeightDecay: 1e-4,
  reset: { ratio: 0.2, noise: 0.1 },
  seed: 5,
  assignment: "exact",
};

/** Clustered latents with a per-dimension offset and scale, so normalisation matters. */
function syntheticLatents(count: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const centres = Array.from({ length: 6 }, () =>
    Float32Array.from({ length: DIMS }, () => rng.nextNormal()),
  );
  const out = new Float32Array(count * DIMS);
  for (let n = 0; n < count; n++) {
    const centre = centres[rng.nextInt(centres.length)];
    for (let j = 0; j < DIMS; j++) {
      out[n * DIMS + j] = 3 + (j % 5) + (1 + (j % 3)) * (centre[j] + 0.3 * rng.nextNormal());
    }
  }
  return out;
}

const allIndices = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

function data(): TrainData {
  // Two shards, as extraction writes them.
  const all = syntheticLatents(96, 1);
  const latents = latentSet([all.subarray(0, 40 * DIMS), all.subarray(40 * DIMS)], DIMS);
  return {
    latents,
    train: allIndices(96),
    heldOut: latentSet([syntheticLatents(16, 2)], DIMS),
    normalizer: latentStatistics(latents),
  };
}

class MemoryStore implements CheckpointStore {
  readonly objects = new Map<string, Uint8Array>();
  async read(name: string) {
    return this.objects.get(name)?.slice() ?? null;
  }
  async write(name: string, bytes: Uint8Array) {
    this.objects.set(name, bytes.slice());
  }
}

/** Every parameter and moment of the run, by name, on the host. */
async function snapshot(run: TrainRun): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const { state } = run;
  const [quant, rect] = state.optimizer.groups.map(momentsOf);
  out.set("embeddings", (await state.quantizer.embeddings.data()) as Float32Array);
  out.set("m.embeddings", (await quant.m[0].data()) as Float32Array);
  out.set("v.embeddings", (await quant.v[0].data()) as Float32Array);
  for (const [i, b] of state.rectifier.bindings.entries()) {
    for (const [prefix, value] of [
      ["", b.param],
      ["m.", rect.m[i]],
      ["v.", rect.v[i]],
    ] as const) {
      for (const [name, d] of await toTorch(b, value)) out.set(prefix + name, d);
    }
  }
  tf.dispose([quant, rect].flatMap(({ m, v }) => [...m, ...v]));
  return out;
}

const timeless = (records: EpochRecord[]) =>
  records.map(({ seconds: _s, latentsPerSecond: _l, endedAt: _e, ...rest }) => rest);

describe("the training run", () => {
  it("initialises every code from token g of a normalised training latent", async () => {
    await runOn("wasm", async () => {
      const d = data();
      const run = await startRun(CONFIG, d);
      const codebook = await readCodebook(run.state.quantizer);
      const normalized = normalizeLatents(gatherLatents(d.latents, d.train), d.normalizer);
      const tokensOf = (g: number) =>
        new Set(
          Array.from({ length: d.train.length }, (_, n) =>
            normalized.subarray((n * 16 + g) * 4, (n * 16 + g + 1) * 4).join(),
          ),
        );
      for (let g = 0; g < 16; g++) {
        const seen = tokensOf(g);
        for (let k = 0; k < 32; k++) {
          expect(
            seen.has(codebook.data.subarray((g * 32 + k) * 4, (g * 32 + k + 1) * 4).join()),
          ).toBe(true);
        }
      }
      expect((await readCounts(run.state)).every((c) => c === 1)).toBe(true);
      disposeRun(run);
    });
  });

  it("trains epochs: reset only after the first, counts zeroed, decaying rates, validation, falling loss", async () => {
    await runOn("wasm", async () => {
      const before = tf.memory().numTensors;
      const d = data();
      const run = await startRun(CONFIG, d);
      const steps: number[] = [];
      const seen: EpochRecord[] = [];
      await train(run, d, {
        onStep: (p) => steps.push(p.step),
        onEpoch: async (record, r) => {
          seen.push(record);
          expect((await readCounts(r.state)).every((c) => c === 0)).toBe(true);
        },
      });
      expect(steps).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
      expect(seen.map((r) => r.epoch)).toEqual([0, 1, 2]);
      expect(run.history).toEqual(seen);
      const [first, second, third] = seen;
      // Epoch 0's counts started at ones: nothing is dead, nothing moves (fixtures README §3).
      expect(first.replacedCodes).toBe(0);
      // 96 latents over 32 codes per group leave dead codes: at most ⌊0.2·32⌋ = 6 move per group.
      expect(second.replacedCodes).toBeGreaterThan(0);
      expect(second.replacedCodes).toBeLessThanOrEqual(16 * 6);
      expect(first.usageMean).toBeLessThan(1);
      expect(first.usageMin).toBeGreaterThan(0);
      const gamma = 0.05 ** (1 / 3);
      expect(second.learningRates.quantizer).toBeCloseTo(0.01 * gamma, 15);
      expect(third.learningRates.rectifier).toBeCloseTo(0.0005 * gamma * gamma, 15);
      for (const r of seen) {
        expect(r.steps).toBe(6);
        expect(r.validation?.latentMse).toBeGreaterThan(0);
        expect(r.validation?.rectifiedMse).toBeGreaterThan(0);
        expect(r.validation?.psnr).toBeUndefined();
      }
      expect(third.lossQuantizer).toBeLessThan(first.lossQuantizer);
      expect(third.lossRectifier).toBeLessThan(first.lossRectifier);
      disposeRun(run);
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  it("resumes from a checkpoint exactly: 2 epochs straight = 1 + checkpoint + 1", async () => {
    await runOn("wasm", async () => {
      const d = data();
      const config = { ...CONFIG, epochs: 2 };
      const straight = await startRun(config, d);
      await train(straight, d);

      const store = new MemoryStore();
      const first = await startRun(config, d);
      await runEpoch(first, d);
      await saveCheckpoint(store, first, "dataset-a");
      disposeRun(first);
      const resumed = await loadCheckpoint(store, "dataset-a");
      if (!resumed) throw new Error("no checkpoint");
      expect(resumed.epoch).toBe(1);
      await train(resumed, d);

      expect(timeless(resumed.history)).toEqual(timeless(straight.history));
      expect(resumed.rng.state()).toEqual(straight.rng.state());
      const [a, b] = [await snapshot(straight), await snapshot(resumed)];
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [name, value] of a) expect(b.get(name), name).toEqual(value);
      expect(resumed.state.optimizer.groups.map((g) => g.step)).toEqual([12, 12]);
      disposeRun(straight);
      disposeRun(resumed);
    });
  });

  it("keeps two state slots and names the latest in checkpoint.json", async () => {
    await runOn("wasm", async () => {
      const d = data();
      const store = new MemoryStore();
      const run = await startRun({ ...CONFIG, epochs: 3 }, d);
      await train(run, d, { onEpoch: (_r, r) => saveCheckpoint(store, r, "x") });
      expect([...store.objects.keys()].toSorted()).toEqual([
        CHECKPOINT_INDEX,
        "state-0.safetensors",
        "state-1.safetensors",
      ]);
      const index = JSON.parse(new TextDecoder().decode(store.objects.get(CHECKPOINT_INDEX)));
      expect(index.epoch).toBe(3);
      expect(index.tensors.path).toBe("state-1.safetensors");
      expect(index.history).toHaveLength(3);
      disposeRun(run);
    });
  });

  it("refuses damaged checkpoints and other data, and finds none in an empty store", async () => {
    await runOn("wasm", async () => {
      const d = data();
      const store = new MemoryStore();
      expect(await loadCheckpoint(store)).toBeNull();
      const run = await startRun(CONFIG, d);
      await runEpoch(run, d);
      await saveCheckpoint(store, run, "dataset-a");
      disposeRun(run);
      await expect(loadCheckpoint(store, "dataset-b")).rejects.toThrow(/made on dataset dataset-a/);

      const state = store.objects.get("state-1.safetensors") as Uint8Array;
      const flipped = state.slice();
      flipped[flipped.length - 1] ^= 1;
      store.objects.set("state-1.safetensors", flipped);
      await expect(loadCheckpoint(store)).rejects.toThrow(/damaged/);
      store.objects.delete("state-1.safetensors");
      await expect(loadCheckpoint(store)).rejects.toThrow(/is missing/);
      store.objects.set("state-1.safetensors", state);

      const index = new TextDecoder().decode(store.objects.get(CHECKPOINT_INDEX));
      store.objects.set(CHECKPOINT_INDEX, new TextEncoder().encode(index.slice(0, 40)));
      await expect(loadCheckpoint(store)).rejects.toThrow(/is not JSON/);
      const edited = JSON.parse(index);
      edited.optimizerSteps = [-1, 6];
      store.objects.set(CHECKPOINT_INDEX, new TextEncoder().encode(JSON.stringify(edited)));
      await expect(loadCheckpoint(store)).rejects.toThrow(/optimizerSteps/);
      edited.optimizerSteps = [6, 6];
      edited.config.codes = 33;
      store.objects.set(CHECKPOINT_INDEX, new TextEncoder().encode(JSON.stringify(edited)));
      await expect(loadCheckpoint(store)).rejects.toThrow(
        /quantizer.embeddings must be an F32 tensor/,
      );
    });
  });

  it("needs at least one full batch of training latents", async () => {
    const d = data();
    await expect(startRun(CONFIG, { ...d, train: d.train.subarray(0, 15) })).rejects.toThrow(
      /at least that many/,
    );
  });

  it("trains the rectifier alone on a given codebook at quantizer lr 0 and no reset", async () => {
    await runOn("wasm", async () => {
      const d = data();
      const first = await startRun({ ...CONFIG, epochs: 1 }, d);
      await train(first, d);
      const trained = await readCodebook(first.state.quantizer);
      const frozen: TrainConfig = {
        ...CONFIG,
        epochs: 2,
        learningRates: { quantizer: 0, rectifier: 0.001 },
        reset: { ratio: 0, noise: 0.1 },
      };
      await expect(startRun({ ...frozen, codes: 16 }, d, trained)).rejects.toThrow(/32 codes/);
      const stage = await startRun(frozen, d, trained);
      const before = await snapshot(stage);
      await train(stage, d);
      expect((await readCodebook(stage.state.quantizer)).data).toEqual(trained.data);
      expect(stage.history.map((e) => e.replacedCodes)).toEqual([0, 0]);
      const after = await snapshot(stage);
      expect(after.get("conv_out.weight")).not.toEqual(before.get("conv_out.weight"));
      disposeRun(first);
      disposeRun(stage);
    });
  });

  it("measures PSNR/SSIM of images decoded from tokens, beside the VAE's own", async () => {
    await runOn("wasm", async () => {
      // The fixture DC-AE at 16×16: latents 8×4×4, 32 tokens of 4.
      const size = { height: 16, width: 16 };
      const vae = await loadFixtureVae(size);
      const count = 44;
      const pixels = new Float32Array(count * 16 * 16 * 3);
      for (let i = 0; i < count; i++) {
        pixels.set(
          Float32Array.from(syntheticPixels(100 + i, 16, 16), (v) => v / 127.5 - 1),
          i * 768,
        );
      }
      const source = {
        count,
        load: async (n: number) => pixels.slice(n * 768, (n + 1) * 768),
      };
      const latents = await extractLatents(source, vae, new MemoryStore(), {
        shardSize: 16,
        batchSize: 8,
      });
      const d = await prepareTrainData(latents, {
        heldOut: 8,
        seed: 3,
        vae,
        images: { source, count: 4 },
      });
      expect([d.train.length, d.heldOut.count, d.probe?.count]).toEqual([36, 8, 4]);
      const config: TrainConfig = {
        ...CONFIG,
        latentShape: vae.latentShape,
        tokens: 32,
        groups: 32,
        codes: 16,
        rectifier: { latentChannels: 8, channels: 16, blocks: 1, headDim: 8, multiscales: [5] },
        epochs: 2,
        batchSize: 12,
      };
      const run = await startRun(config, d);
      await train(run, d);
      for (const { validation: v } of run.history) {
        // The fixture DC-AE has random weights: its own reconstructions are poor (~8 dB), and so
        // are those from tokens; only the measurement is checked here.
        expect(v?.psnr).toBeGreaterThan(5);
        expect(v?.psnr).toBeLessThan(60);
        expect(v?.ssim).toBeGreaterThan(-1);
        expect(v?.ssim).toBeLessThanOrEqual(1);
      }
      expect(run.history[0].validation?.vaePsnr).toBe(d.probe?.vaePsnr);
      disposeRun(run);
      vae.dispose();
    });
  });

  it("exports a tokenizer whose files hold the run, the same hash every time", async () => {
    await runOn("wasm", async () => {
      const d = data();
      const run = await startRun({ ...CONFIG, epochs: 1 }, d);
      const spec = {
        name: "tiny",
        vae: {
          name: "some-vae",
          kind: "dcae" as const,
          inputResolution: { height: 16, width: 16 },
          latentShape: LATENT,
        },
        dataset: { name: "synthetic", images: 112 },
      };
      await expect(exportTokenizer(run, d.normalizer, spec)).rejects.toThrow(/finished 0 of 1/);
      await train(run, d);
      const a = await exportTokenizer(run, d.normalizer, spec);
      const b = await exportTokenizer(run, d.normalizer, spec);
      expect(b.hash).toBe(a.hash);
      expect(a.hash).toBe(await sha256Hex(a.manifestBytes));
      expect(parseManifest(JSON.parse(new TextDecoder().decode(a.manifestBytes)))).toEqual(
        a.manifest,
      );
      expect([...a.files.keys()].toSorted()).toEqual([
        "codebook.safetensors",
        "rectifier.safetensors",
        "stats.safetensors",
      ]);
      expect(a.manifest.training?.createdAt).toBe(run.history[0].endedAt);
      expect(a.manifest.training?.metrics?.lossRectifier).toBe(run.history[0].lossRectifier);

      const file = (path: string) => parseSafetensors(a.files.get(path) as Uint8Array);
      expect(readTensor(file("stats.safetensors"), "mean").data).toEqual(d.normalizer.mean);
      expect(readTensor(file("stats.safetensors"), "std").data).toEqual(d.normalizer.std);
      expect(readTensor(file("codebook.safetensors"), "codebook").data).toEqual(
        (await readCodebook(run.state.quantizer)).data,
      );
      // The rectifier file loads as ReVQ's state dict and computes what the trained one does.
      const loaded = await loadRectifier(
        CONFIG.rectifier,
        safetensorsSource(a.files.get("rectifier.safetensors") as Uint8Array),
      );
      const x = tf.randomNormal([2, 4, 4, 4], 0, 1, "float32", 3) as tf.Tensor4D;
      const [mine, theirs] = [rectify(run.state.rectifier, x), rectify(loaded, x)];
      expect(await theirs.data()).toEqual(await mine.data());
      tf.dispose([x, mine, theirs]);
      disposeRectifier(loaded);
      disposeRun(run);
    });
  });
});
