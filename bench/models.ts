/**
 * Model throughput per tfjs backend: DC-AE f32c32 (sana-1.1 architecture, random weights) encode
 * and decode at small image sizes, and the ReVQ rectifier presets forward and forward+backward
 * (one training step without the optimizer) on 32×8×8 latents. Weights are random: throughput
 * does not depend on them, and nothing is downloaded.
 *
 *   npm run bench:models                       # every backend that starts here
 *   npm run bench:models -- wasm webgpu        # only these
 *   npm run bench:models -- --quick            # smaller cases, for a smoke run
 *
 * Each case runs in a process of its own: wasm's heap only grows (to 4 GB at most), so cases
 * sharing one would fail or slow each other. The pure-JS cpu backend gets only the tiny
 * rectifier: the real models take minutes per image there. Batches of the paper's rectifiers:
 * 16 on a GPU, 4 on wasm (a 1024-channel train step at batch 8 needs 3.8 GB of its heap), 2 on a
 * software WebGPU device (llvmpipe), which also gets only the smallest image size. The machine's
 * load average is recorded with the figures: other work on it slows every case.
 * Results: bench/results/models.json.
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, selectBackend } from "../gpu-worker/src/backend.ts";
import {
  decode,
  encode,
  loadDcaeDecoder,
  loadDcaeEncoder,
} from "../gpu-worker/src/models/dcae/model.ts";
import { dcaePreset } from "../gpu-worker/src/models/dcae/presets.ts";
import {
  initRectifier,
  RECTIFIER_PRESETS,
  type RectifierPresetName,
  rectifierLoss,
  rectify,
} from "../gpu-worker/src/models/rectifier.ts";
import { randomInitSource } from "../gpu-worker/src/models/sources.ts";
import { benchPerBackend } from "./lib/per-backend.ts";
import { writeResults } from "./lib/results.ts";

/** One measurement: a model, a task, a batch size; run in a child process. */
type Case =
  | { kind: "rectifier"; preset: RectifierPresetName; batch: number }
  | { kind: "dcae"; half: "encoder" | "decoder"; side: number; batch: number };

type Row = {
  model: string;
  task: string;
  batch: number;
  imagesPerSecond: number;
  msPerBatch: number;
  calls: number;
};

/** Runs fn (which returns a tensor) until minMs passed, after one warm-up; waits for the data. */
async function time(fn: () => tf.Tensor, minMs: number): Promise<{ ms: number; calls: number }> {
  const warm = fn();
  await warm.data();
  warm.dispose();
  let calls = 0;
  const start = performance.now();
  do {
    const out = fn();
    await out.data(); // a GPU backend has only queued the work until its result is read
    out.dispose();
    calls++;
  } while (performance.now() - start < minMs);
  return { ms: (performance.now() - start) / calls, calls };
}

function row(model: string, task: string, batch: number, t: { ms: number; calls: number }): Row {
  const imagesPerSecond = (1000 * batch) / t.ms;
  return { model, task, batch, imagesPerSecond, msPerBatch: t.ms, calls: t.calls };
}

/** The child's side: one case on one backend; prints its rows as JSON. */
async function runCase(backend: BackendName, c: Case, minMs: number): Promise<Row[]> {
  await selectBackend(backend);
  if (c.kind === "dcae") {
    // One half per process: both halves of f32c32 do not fit wasm's heap together (model.ts).
    const config = dcaePreset("dc-ae-f32c32-sana-1.1");
    const name = `dc-ae-f32c32-sana-1.1 ${c.side}×${c.side}`;
    if (c.half === "encoder") {
      const { encoder } = await loadDcaeEncoder(config, randomInitSource(1));
      const image = tf.randomUniform([c.batch, c.side, c.side, 3], -1, 1) as tf.Tensor4D;
      return [
        row(
          name,
          "encode",
          c.batch,
          await time(() => tf.tidy(() => encode(encoder, image)), minMs),
        ),
      ];
    }
    const { decoder } = await loadDcaeDecoder(config, randomInitSource(1));
    const side = c.side / config.spatialCompression;
    const latent = tf.randomNormal([
      c.batch,
      side,
      side,
      config.decoder.latentChannels,
    ]) as tf.Tensor4D;
    return [
      row(name, "decode", c.batch, await time(() => tf.tidy(() => decode(decoder, latent)), minMs)),
    ];
  }
  const r = await initRectifier(RECTIFIER_PRESETS[c.preset], 1);
  const side = c.preset === "tiny" ? 4 : 8;
  const shape: [number, number, number, number] = [c.batch, side, side, r.config.latentChannels];
  const quantized = tf.randomNormal(shape) as tf.Tensor4D;
  const target = tf.randomNormal(shape) as tf.Tensor4D;
  const variables = r.bindings.map((b) => b.param as tf.Variable);
  const step = () => {
    const { value, grads } = tf.variableGrads(() => rectifierLoss(r, quantized, target), variables);
    tf.dispose(Object.values(grads));
    return value;
  };
  const name = `rectifier ${c.preset}`;
  return [
    row(name, "forward", c.batch, await time(() => tf.tidy(() => rectify(r, quantized)), minMs)),
    row(name, "forward+backward", c.batch, await time(step, minMs)),
  ];
}

/** The cases for a backend, sized to what it can run in reasonable time and memory. */
function casesFor(backend: BackendName, accelerated: boolean, quick: boolean): Case[] {
  const tiny: Case = { kind: "rectifier", preset: "tiny", batch: 32 };
  if (backend === "cpu") return [tiny];
  const slow = quick || (backend === "webgpu" && !accelerated);
  const batch = accelerated ? 16 : slow ? 2 : 4;
  const presets: RectifierPresetName[] = quick
    ? ["512x16384"]
    : ["512x16384", "256x65536", "256x262144"];
  return [
    tiny,
    ...presets.map((preset): Case => ({ kind: "rectifier", preset, batch })),
    ...(slow ? [64] : [64, 128]).flatMap((side) =>
      (["encoder", "decoder"] as const).map(
        (half): Case => ({ kind: "dcae", half, side, batch: 1 }),
      ),
    ),
  ];
}

const figures = await benchPerBackend({
  script: import.meta.url,
  args: process.argv.slice(2),
  minMs: (quick) => (quick ? 500 : 3000),
  cases: casesFor,
  runCase,
  describe: (backend, r: Row) =>
    `${backend.padEnd(8)} ${r.model.padEnd(34)} ${r.task.padEnd(16)} batch ${r.batch}: ${r.imagesPerSecond.toFixed(2)} images/s`,
});
if (figures) console.log(`written to ${writeResults("models", figures)}`);
process.exit(0); // Dawn's threads would otherwise keep the process alive
