/**
 * Model throughput per tfjs backend: DC-AE f32c32 (sana-1.1 architecture, random weights) encode
 * and decode, and the ReVQ rectifier presets forward and forward+backward (one training step
 * without the optimizer) on 32×8×8 latents. Weights are random: throughput does not depend on
 * them, and nothing is downloaded.
 *
 *   npm run bench:models                       # every backend that starts here
 *   npm run bench:models -- wasm webgpu        # only these
 *   npm run bench:models -- --quick            # smaller cases, for a smoke run
 *
 * DC-AE runs at the paper's 256×256 with batches 1, 8, 32 and 64 on a GPU; at 64×64 (batches 1
 * and 2) on a software WebGPU device (llvmpipe), where only its counts mean anything; at 64×64
 * and 256×256, batch 1, on wasm. Each DC-AE row carries the tensor memory it peaked at per image
 * (tf.profile, above what existed before the call) and, on webgpu, the GPU work of one call
 * (dispatches, submits, new buffers, maps: bench/lib/gpu-work.ts), which does not depend on the
 * machine. Where Debian's python3-torch is installed and ../shared/baselines/revq_torch.py is
 * found (or REVQ_BASELINE names it), the PyTorch baseline encodes and decodes the wasm rows'
 * shapes on the CPU too, one thread each, and the ratios are recorded beside them.
 *
 * Each case runs in a process of its own: wasm's heap only grows (to 4 GB at most), so cases
 * sharing one would fail or slow each other. The pure-JS cpu backend gets only the tiny
 * rectifier: the real models take minutes per image there. Batches of the paper's rectifiers:
 * 16 on a GPU, 4 on wasm (a 1024-channel train step at batch 8 needs 3.8 GB of its heap), 2 on a
 * software WebGPU device. The machine's load average is recorded with the figures: other work on
 * it slows every case. Results: bench/results/models.json.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname } from "node:path";
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
import { countGpuWork, type GpuWork } from "./lib/gpu-work.ts";
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
  /** DC-AE: the image side. */
  side?: number;
  /** DC-AE: tensor bytes at the call's peak above those before it, per image. */
  peakBytesPerImage?: number;
  /** DC-AE on webgpu: the GPU work of one call, read back included. */
  work?: GpuWork;
  /** DC-AE where the GPU times kernels (timestamp-query): GPU ms per tfjs kernel, most first. */
  kernelMs?: Record<string, { calls: number; ms: number }>;
};

const DCAE = "dc-ae-f32c32-sana-1.1";

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

/** DC-AE's peak tensor memory per image and, on webgpu, the GPU work of one more call. */
async function dcaeCosts(backend: BackendName, fn: () => tf.Tensor, batch: number) {
  const before = tf.memory().numBytes;
  const profile = await tf.profile(async () => {
    const out = fn();
    await out.data();
    out.dispose();
  });
  const peakBytesPerImage = (profile.peakBytes - before) / batch;
  if (backend !== "webgpu") return { peakBytesPerImage };
  const kernelMs = gpuKernelTimes(profile.kernels);
  const { work } = await countGpuWork(async () => {
    const out = fn();
    await out.data();
    out.dispose();
  });
  return { peakBytesPerImage, work, ...(kernelMs ? { kernelMs } : {}) };
}

/**
 * GPU time per kernel name, most first; undefined where the device cannot time kernels (no
 * timestamp-query: tfjs reports 0 or an error). Op scopes (`…__op`) wrap kernels already counted.
 */
function gpuKernelTimes(kernels: Awaited<ReturnType<typeof tf.profile>>["kernels"]) {
  const byName = new Map<string, { calls: number; ms: number }>();
  for (const k of kernels) {
    if (k.name.endsWith("__op")) continue;
    const entry = byName.get(k.name) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    byName.set(k.name, entry);
  }
  const timed = [...byName].filter(([, e]) => e.ms > 0);
  return timed.length > 0 ? Object.fromEntries(timed.sort((a, b) => b[1].ms - a[1].ms)) : undefined;
}

/** One DC-AE half on a random batch: its timing, memory and (webgpu) GPU work. */
async function runDcae(
  backend: BackendName,
  c: Extract<Case, { kind: "dcae" }>,
  minMs: number,
): Promise<Row[]> {
  // One half per process: both halves of f32c32 do not fit wasm's heap together (model.ts).
  const config = dcaePreset(DCAE);
  const name = `${DCAE} ${c.side}×${c.side}`;
  let fn: () => tf.Tensor;
  if (c.half === "encoder") {
    const { encoder } = await loadDcaeEncoder(config, randomInitSource(1));
    const image = tf.randomUniform([c.batch, c.side, c.side, 3], -1, 1) as tf.Tensor4D;
    fn = () => tf.tidy(() => encode(encoder, image));
  } else {
    const { decoder } = await loadDcaeDecoder(config, randomInitSource(1));
    const side = c.side / config.spatialCompression;
    const shape: [number, number, number, number] = [
      c.batch,
      side,
      side,
      config.decoder.latentChannels,
    ];
    const latent = tf.randomNormal(shape) as tf.Tensor4D;
    fn = () => tf.tidy(() => decode(decoder, latent));
  }
  const task = c.half === "encoder" ? "encode" : "decode";
  const timing = await time(fn, minMs);
  const costs = await dcaeCosts(backend, fn, c.batch);
  return [{ ...row(name, task, c.batch, timing), side: c.side, ...costs }];
}

/** The child's side: one case on one backend; prints its rows as JSON. */
async function runCase(backend: BackendName, c: Case, minMs: number): Promise<Row[]> {
  await selectBackend(backend);
  if (c.kind === "dcae") return runDcae(backend, c, minMs);
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

/** The DC-AE shapes a backend runs: [side, batch]. */
function dcaeShapes(backend: BackendName, accelerated: boolean, quick: boolean): number[][] {
  if (accelerated) return (quick ? [1, 32] : [1, 8, 32, 64]).map((batch) => [256, batch]);
  if (backend === "webgpu") return [[64, 1], ...(quick ? [] : [[64, 2]])];
  return [[64, 1], ...(quick ? [] : [[256, 1]])];
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
    ...dcaeShapes(backend, accelerated, quick).flatMap(([side, batch]) =>
      (["encoder", "decoder"] as const).map((half): Case => ({ kind: "dcae", half, side, batch })),
    ),
  ];
}

type BaselineRow = {
  side: number;
  batch: number;
  torch: string;
  encodeImagesPerSecond: number;
  decodeImagesPerSecond: number;
  /** wasm's images/s ÷ the baseline's, same shape, one thread each. */
  wasmEncodeRatio: number | null;
  wasmDecodeRatio: number | null;
};

const BASELINE =
  process.env.REVQ_BASELINE ??
  new URL("../../shared/baselines/revq_torch.py", import.meta.url).pathname;

/** Why the baseline cannot run here, or null when it can. */
function baselineMissing(): string | null {
  if (!existsSync(BASELINE)) return `no baseline at ${BASELINE}`;
  try {
    execFileSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" });
    return null;
  } catch {
    return "no PyTorch for /usr/bin/python3 (Debian: apt-get install python3-torch)";
  }
}

/**
 * The baseline's DC-AE (its own module: model, weights initialisation, timer) on the CPU with one
 * thread, in seconds per batch: its command line rounds images/s to two decimals, which at
 * 256×256 on a CPU (~0.03) leaves one digit.
 */
const BASELINE_DCAE = `
import json, sys, torch
sys.path.insert(0, sys.argv[1]); import revq_torch as r
side, batch, steps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1); torch.manual_seed(0)
cpu = torch.device("cpu")
model = r.AutoencoderDC(r.F32C32_SANA).eval()
x = torch.rand(batch, 3, side, side) * 2 - 1
with torch.no_grad():
    z = model.encoder(x)
    encode, _ = r.timed(lambda: model.encoder(x), steps, 1, cpu)
    decode, _ = r.timed(lambda: model.decoder(z), steps, 1, cpu)
print(json.dumps({"encode": encode, "decode": decode, "torch": torch.__version__}))
`;

/** The baseline's DC-AE on the CPU, one thread, at each shape wasm ran, with the ratios. */
function cpuBaseline(wasmRows: Row[]): BaselineRow[] | { unavailable: string } {
  const missing = baselineMissing();
  if (missing) return { unavailable: missing };
  const shapes = new Set(wasmRows.flatMap((r) => (r.side ? [`${r.side}×${r.batch}`] : [])));
  return [...shapes].map((shape) => {
    const [side, batch] = shape.split("×").map(Number);
    const args = [`${side}`, `${batch}`, side > 128 ? "3" : "5"];
    const output = execFileSync(
      "/usr/bin/python3",
      ["-c", BASELINE_DCAE, dirname(BASELINE), ...args],
      {
        encoding: "utf8",
        env: { ...process.env, OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" },
      },
    );
    const seconds = JSON.parse(output.trim().split("\n").at(-1) as string);
    const ours = (task: string) =>
      wasmRows.find((r) => r.side === side && r.task === task && r.batch === batch)
        ?.imagesPerSecond;
    const theirs = (task: "encode" | "decode") => batch / seconds[task];
    const ratio = (task: "encode" | "decode") => {
      const mine = ours(task);
      return mine ? mine / theirs(task) : null;
    };
    return {
      side,
      batch,
      torch: seconds.torch,
      encodeImagesPerSecond: theirs("encode"),
      decodeImagesPerSecond: theirs("decode"),
      wasmEncodeRatio: ratio("encode"),
      wasmDecodeRatio: ratio("decode"),
    };
  });
}

const figures = await benchPerBackend({
  script: import.meta.url,
  args: process.argv.slice(2),
  minMs: (quick) => (quick ? 500 : 3000),
  cases: casesFor,
  runCase,
  describe: (backend, r: Row) =>
    `${backend.padEnd(8)} ${r.model.padEnd(34)} ${r.task.padEnd(16)} batch ${r.batch}: ${r.imagesPerSecond.toFixed(2)} images/s` +
    (r.work ? `, ${r.work.dispatches} dispatches, ${r.work.newBuffers} new buffers` : "") +
    (r.peakBytesPerImage ? `, ${(r.peakBytesPerImage / 2 ** 20).toFixed(1)} MiB/image peak` : ""),
});
if (figures) {
  const wasm = figures.backends.wasm as { rows?: (Row | { error: string })[] } | undefined;
  const wasmRows = (wasm?.rows ?? []).filter((r): r is Row => !("error" in r));
  const baseline = wasmRows.length > 0 ? cpuBaseline(wasmRows) : undefined;
  if (baseline) console.log(`PyTorch baseline on the CPU, one thread: ${JSON.stringify(baseline)}`);
  console.log(`written to ${writeResults("models", { ...figures, cpuBaseline: baseline })}`);
}
process.exit(0); // Dawn's threads would otherwise keep the process alive
