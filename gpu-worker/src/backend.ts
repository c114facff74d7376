/**
 * Chooses the TensorFlow.js backend the worker computes on. `auto` takes the fastest one that
 * starts here, in this order:
 *
 * 1. `tensorflow`: @tensorflow/tfjs-node-gpu (libtensorflow with CUDA), the production path on a
 *    GPU box. An optional dependency: its install script downloads libtensorflow, so it is absent
 *    wherever that download is impossible.
 * 2. `webgpu` on a hardware adapter (Dawn's Node bindings, Vulkan). A software adapter (llvmpipe,
 *    lavapipe, SwiftShader) is several times slower than wasm, so `auto` passes it over; asking for
 *    `webgpu` by name takes it.
 * 3. `wasm`: XNNPACK with SIMD, one thread in Node, plus the gradient kernels it lacks.
 * 4. `cpu`: plain JavaScript, always there.
 *
 * This module is Node glue; the models themselves use only @tensorflow/tfjs-core.
 */

import * as tf from "@tensorflow/tfjs-core";
// tfjs-core's Node build registers no gradients; the union package's build carries and registers
// them all (tape-based training needs them on every backend).
import "@tensorflow/tfjs";
import { startTensorflow } from "./backends/tensorflow.ts";
import { startWasm } from "./backends/wasm.ts";
import { startWebgpu } from "./backends/webgpu.ts";

export const BACKEND_NAMES = ["tensorflow", "webgpu", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type BackendChoice = BackendName | "auto";

/** What starting one backend gave: a description of the device, or why it could not start. */
export type Attempt = { backend: BackendName; ok: boolean; detail: string };

export type BackendSelection = {
  backend: BackendName;
  /** Whether it runs on a hardware accelerator (a GPU), not on the CPU or a software device. */
  accelerated: boolean;
  /** One sentence: which backend, on what, and why it was chosen. */
  reason: string;
  attempts: Attempt[];
};

export type BackendOptions = {
  /** Let `auto` take a software WebGPU adapter (tests use this to exercise webgpu). */
  allowSoftwareWebgpu?: boolean;
};

/** A started backend: the device it runs on, and whether that is a hardware accelerator. */
export type Started = { device: string; accelerated: boolean };

/** `hardwareOnly`: a software device would be passed over, so do not open one (webgpu). */
export type StartOptions = { hardwareOnly: boolean };

const STARTERS: Record<BackendName, (options: StartOptions) => Promise<Started>> = {
  tensorflow: startTensorflow,
  webgpu: startWebgpu,
  wasm: startWasm,
  cpu: startCpu,
};

export function isBackendChoice(value: string): value is BackendChoice {
  return value === "auto" || (BACKEND_NAMES as readonly string[]).includes(value);
}

/** Starts `choice` (or the best available for `auto`) and makes it tfjs's current backend. */
export async function selectBackend(
  choice: BackendChoice = "auto",
  options: BackendOptions = {},
): Promise<BackendSelection> {
  const attempts: Attempt[] = [];
  const candidates = choice === "auto" ? BACKEND_NAMES : [choice];
  const hardwareOnly = choice === "auto" && options.allowSoftwareWebgpu !== true;
  for (const backend of candidates) {
    const started = await tryStart(backend, { hardwareOnly });
    attempts.push(started.attempt);
    if (!started.ok) continue;
    const acceptable =
      choice !== "auto" ||
      backend !== "webgpu" ||
      started.accelerated ||
      options.allowSoftwareWebgpu === true;
    if (!acceptable) {
      started.attempt.detail += " (software adapter: slower than wasm, passed over)";
      continue;
    }
    if (!(await tf.setBackend(backend))) {
      started.attempt.ok = false;
      started.attempt.detail += " (tfjs could not initialise it)";
      continue;
    }
    await tf.ready();
    const reason = explain(choice, backend, started.attempt, attempts);
    return { backend, accelerated: started.accelerated, reason, attempts };
  }
  const tried = attempts.map((a) => `${a.backend}: ${a.detail}`).join("; ");
  throw new Error(`no tfjs backend could start for "${choice}": ${tried}`);
}

async function tryStart(
  backend: BackendName,
  options: StartOptions,
): Promise<{ ok: boolean; accelerated: boolean; attempt: Attempt }> {
  try {
    const { device, accelerated } = await STARTERS[backend](options);
    return { ok: true, accelerated, attempt: { backend, ok: true, detail: device } };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, accelerated: false, attempt: { backend, ok: false, detail } };
  }
}

/** One short line: a worker prints it first, so the passed-over backends get a few words each. */
function explain(
  choice: BackendChoice,
  backend: BackendName,
  chosen: Attempt,
  attempts: Attempt[],
): string {
  if (choice !== "auto") return `${backend} on ${chosen.detail}, as asked`;
  const passed = attempts
    .filter((a) => a !== chosen)
    .map((a) => `${a.backend} (${a.ok ? "a software adapter" : a.detail})`);
  const over = passed.length > 0 ? `; passed over: ${passed.join(", ")}` : "";
  return `${backend} on ${chosen.detail}: the fastest that started here${over}`;
}

async function startCpu(): Promise<Started> {
  await import("@tensorflow/tfjs-backend-cpu");
  return { device: "JavaScript on the CPU", accelerated: false };
}
