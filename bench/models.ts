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
 * The pure-JS cpu backend gets only the tiny rectifier: the real models take minutes per image
 * there. A software WebGPU device (llvmpipe) gets small batches and the smallest image size.
 * Results: bench/results/models.json.
 */
import * as tf from "@tensorflow/tfjs-core";
import { BACKEND_NAMES, type BackendName, selectBackend } from "../gpu-worker/src/backend.ts";
import {
  type Dcae,
  decode,
  disposeDcae,
  encode,
  loadDcae,
} from "../gpu-worker/src/models/dcae/model.ts";
import { dcaePreset } from "../gpu-worker/src/models/dcae/presets.ts";
import {
  disposeRectifier,
  initRectifier,
  RECTIFIER_PRESETS,
  type RectifierPresetName,
  rectifierLoss,
  rectify,
} from "../gpu-worker/src/models/rectifier.ts";
import { randomInitSource } from "../gpu-worker/src/models/sources.ts";
import { writeResults } from "./lib/results.ts";

type Row = {
  backend: BackendName;
  model: string;
  task: string;
  batch: number;
  imagesPerSecond: number;
  msPerBatch: number;
  calls: number;
};

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const asked = args.filter((a): a is BackendName =>
  (BACKEND_NAMES as readonly string[]).includes(a),
);
const backends = asked.length > 0 ? asked : [...BACKEND_NAMES];
const MIN_MS = quick ? 500 : 3000;

/** Runs fn (which returns a tensor) until minMs passed, after one warm-up; waits for the data. */
async function time(
  fn: () => tf.Tensor,
  minMs: number,
): Promise<{ msPerCall: number; calls: number }> {
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
  return { msPerCall: (performance.now() - start) / calls, calls };
}

function row(
  backend: BackendName,
  model: string,
  task: string,
  batch: number,
  t: { msPerCall: number; calls: number },
): Row {
  const r = {
    backend,
    model,
    task,
    batch,
    imagesPerSecond: (1000 * batch) / t.msPerCall,
    msPerBatch: t.msPerCall,
    calls: t.calls,
  };
  console.log(
    `${backend.padEnd(10)} ${model.padEnd(34)} ${task.padEnd(16)} batch ${batch}: ${r.imagesPerSecond.toFixed(2)} images/s`,
  );
  return r;
}

async function benchDcae(
  backend: BackendName,
  model: Dcae,
  side: number,
  batch: number,
): Promise<Row[]> {
  const f = model.config.spatialCompression;
  const name = `dc-ae-f32c32-sana-1.1 ${side}×${side}`;
  const image = tf.randomUniform([batch, side, side, 3], -1, 1) as tf.Tensor4D;
  const latent = tf.randomNormal([
    batch,
    side / f,
    side / f,
    model.config.encoder.latentChannels,
  ]) as tf.Tensor4D;
  const rows = [
    row(
      backend,
      name,
      "encode",
      batch,
      await time(() => tf.tidy(() => encode(model.encoder, image)), MIN_MS),
    ),
    row(
      backend,
      name,
      "decode",
      batch,
      await time(() => tf.tidy(() => decode(model.decoder, latent)), MIN_MS),
    ),
  ];
  tf.dispose([image, latent]);
  return rows;
}

async function benchRectifier(
  backend: BackendName,
  preset: RectifierPresetName,
  batch: number,
): Promise<Row[]> {
  const r = await initRectifier(RECTIFIER_PRESETS[preset], 1);
  const side = preset === "tiny" ? 4 : 8;
  const shape: [number, number, number, number] = [batch, side, side, r.config.latentChannels];
  const quantized = tf.randomNormal(shape) as tf.Tensor4D;
  const target = tf.randomNormal(shape) as tf.Tensor4D;
  const variables = r.bindings.map((b) => b.param as tf.Variable);
  const name = `rectifier ${preset}`;
  const rows = [
    row(
      backend,
      name,
      "forward",
      batch,
      await time(() => tf.tidy(() => rectify(r, quantized)), MIN_MS),
    ),
    row(
      backend,
      name,
      "forward+backward",
      batch,
      await time(() => {
        const { value, grads } = tf.variableGrads(
          () => rectifierLoss(r, quantized, target),
          variables,
        );
        tf.dispose(Object.values(grads));
        return value;
      }, MIN_MS),
    ),
  ];
  tf.dispose([quantized, target]);
  disposeRectifier(r);
  return rows;
}

const results: Record<string, { reason: string; rows: Row[] } | { error: string }> = {};
for (const backend of backends) {
  let reason: string;
  let slow: boolean; // a software device: smaller cases, or this backend alone takes an hour
  try {
    const selection = await selectBackend(backend);
    reason = selection.reason;
    slow = quick || (backend === "webgpu" && !selection.accelerated);
  } catch (error) {
    results[backend] = { error: (error as Error).message };
    console.log(`${backend}: not available (${(error as Error).message})`);
    continue;
  }
  console.log(`${backend}: ${reason}`);
  const rows: Row[] = [];
  rows.push(...(await benchRectifier(backend, "tiny", 32)));
  if (backend !== "cpu") {
    const presets: RectifierPresetName[] = quick
      ? ["512x16384"]
      : ["512x16384", "256x65536", "256x262144"];
    for (const preset of presets)
      rows.push(...(await benchRectifier(backend, preset, slow ? 2 : 16)));
    const model = await loadDcae(dcaePreset("dc-ae-f32c32-sana-1.1"), randomInitSource(1));
    for (const side of slow ? [64] : [64, 128])
      rows.push(...(await benchDcae(backend, model, side, 1)));
    disposeDcae(model);
  }
  results[backend] = { reason, rows };
}
console.log(
  `written to ${writeResults("models", { quick, minMsPerCase: MIN_MS, backends: results })}`,
);
process.exit(0); // Dawn's threads would otherwise keep the process alive
