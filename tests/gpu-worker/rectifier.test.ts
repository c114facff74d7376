import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { type BackendName, selectBackend } from "../../gpu-worker/src/backend.ts";
import {
  disposeRectifier,
  initRectifier,
  loadRectifier,
  RECTIFIER_PRESETS,
  type RectifierConfig,
  rectifierConfigFromRevq,
  rectifierLoss,
  rectifierSpec,
  rectify,
} from "../../gpu-worker/src/models/rectifier.ts";
import { safetensorsSource } from "../../gpu-worker/src/models/sources.ts";
import { toTorch } from "../../gpu-worker/src/models/weights.ts";
import {
  FIXTURES_DIR,
  type Fixture,
  LOCAL_FIXTURES_DIR,
  LOCAL_TRAIN_C,
  loadFixture,
} from "../helpers/fixtures.ts";
import { download, runOn, scaledError, values } from "./helpers/backends.ts";
import { nchwToNhwc, toNchw } from "./helpers/dcae-fixture.ts";

// fixtures README §6: a float64 re-run moves grads by ≤ 1.1e-6 of each tensor's max and the
// losses by ≤ 1.4e-7; the suggested checks are 1e-5 of the max and 1e-6 relative. The cpu
// backend sums in JavaScript numbers (float64) and meets them. wasm sums in float32, one element
// after another: its loss is 1.2e-6 off and the multiscale projection's gradient 1.3e-5 of its
// max, so it gets twice the suggested tolerances.
const TOLERANCES = {
  cpu: { grad: 1e-5, loss: 1e-6 },
  wasm: { grad: 2e-5, loss: 2e-6 },
};
const OUTPUT_TOL = 1e-5;

/** An instance of fixture C with its rectifier's configuration and bytes. */
type Instance = { name: string; C: Fixture; config: RectifierConfig; bytes: Uint8Array };

function instance(name: string, dir: string): Instance {
  const C = loadFixture(name, name, dir);
  const config = rectifierConfigFromRevq(C.json.rectifier as Record<string, unknown>);
  return { name, C, config, bytes: new Uint8Array(readFileSync(join(dir, `${name}.safetensors`))) };
}

// The shared fixture C, then those of tests/fixtures (other seeds, a two-block rectifier).
const INSTANCES = [
  instance("train_C", FIXTURES_DIR),
  ...LOCAL_TRAIN_C.map((n) => instance(n, LOCAL_FIXTURES_DIR)),
];
const CONFIG = INSTANCES[0].config;

/** Step 1 of fixtures C, the rectifier's half: its output, loss, gradients and gradient norm. */
function step1({ C, config, bytes }: Instance, backend: BackendName) {
  return runOn(backend, async () => {
    const r = await loadRectifier(config, safetensorsSource(bytes, "init.decoder."), (t) =>
      tf.variable(t),
    );
    const [b, , d] = C.shape("x_quant_step1");
    const shape = C.shape("batch_step1");
    expect(b * C.shape("x_quant_step1")[1] * d).toBe(shape.reduce((x, y) => x * y));
    // unshuffle: a sample's tokens, read in order, are its C·H·W values in row-major order.
    const quantized = nchwToNhwc(C.f32("x_quant_step1"), shape);
    const target = nchwToNhwc(C.f32("batch_step1"), shape);
    const rec = await toNchw(tf.tidy(() => rectify(r, quantized)));
    const variables = r.bindings.map((binding) => binding.param as tf.Variable);
    const { value, grads } = tf.variableGrads(() => rectifierLoss(r, quantized, target), variables);
    const named = new Map<string, Float32Array>();
    for (const binding of r.bindings) {
      for (const [name, g] of await toTorch(binding, grads[(binding.param as tf.Variable).name])) {
        named.set(name, g);
      }
    }
    const loss = (await value.data())[0];
    tf.dispose([value, quantized, target, ...Object.values(grads)]);
    disposeRectifier(r);
    return { rec, loss, grads: named };
  });
}

describe("rectifier configuration", () => {
  it("reads ReVQ's DCAEDecoder arguments: fixtures C is the tiny preset", () => {
    expect(CONFIG).toEqual(RECTIFIER_PRESETS.tiny);
  });

  it("has the paper's presets (512 × 3 blocks, 1024 × 4, 512 × 4; head dim 32, kernel 5)", () => {
    const shape = (name: keyof typeof RECTIFIER_PRESETS) => {
      const { channels, blocks, headDim, multiscales } = RECTIFIER_PRESETS[name];
      return [channels, blocks, headDim, ...multiscales];
    };
    expect(shape("512x16384")).toEqual([512, 3, 32, 5]);
    expect(shape("256x65536")).toEqual([1024, 4, 32, 5]);
    expect(shape("256x262144")).toEqual([512, 4, 32, 5]);
    expect(() => rectifierSpec({ ...CONFIG, channels: 30 })).toThrow(/multiple/);
  });
});

for (const inst of INSTANCES) {
  const { C } = inst;
  for (const backend of ["cpu", "wasm"] as const) {
    it(`matches ${inst.name} step 1 (output, loss, gradients) on ${backend}`, async () => {
      const before = tf.memory().numTensors;
      const { rec, loss, grads } = await step1(inst, backend);
      expect(tf.memory().numTensors).toBe(before);
      expect(scaledError(rec, C.f32("data_rec_step1"))).toBeLessThan(OUTPUT_TOL);
      const [, lossDecoder] = C.f32("loss_step1");
      expect(Math.abs(loss - lossDecoder) / lossDecoder).toBeLessThan(TOLERANCES[backend].loss);
      const expectedNames = C.names()
        .filter((n) => n.startsWith("grad_step1.decoder."))
        .map((n) => n.slice("grad_step1.decoder.".length));
      expect([...grads.keys()].toSorted()).toEqual(expectedNames.toSorted());
      let squares = 0;
      for (const [name, grad] of grads) {
        expect(scaledError(grad, C.f32(`grad_step1.decoder.${name}`)), name).toBeLessThan(
          TOLERANCES[backend].grad,
        );
        for (const g of grad) squares += g * g;
      }
      const [, normDecoder] = C.f32("grad_norm_step1");
      expect(Math.abs(Math.sqrt(squares) - normDecoder) / normDecoder).toBeLessThan(1e-5);
    });
  }
}

/**
 * webgpu runs where Dawn finds an adapter: a GPU through Vulkan, or Mesa's llvmpipe through
 * OpenGL ES (Debian's libegl-mesa0, libgles2, libgl1-mesa-dri). Without one the test is skipped.
 */
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);

// Same model, same inputs; float32 with each backend's own kernels and summation order.
const CROSS_BACKEND = { output: 1e-5, grad: 1e-4 };

async function forwardBackward(backend: BackendName) {
  return runOn(backend, async () => {
    const r = await initRectifier(CONFIG, 7);
    const shape: [number, number, number, number] = [2, 4, 4, CONFIG.latentChannels];
    const quantized = tf.tensor4d(values(32 * CONFIG.latentChannels, 1), shape);
    const target = tf.tensor4d(values(32 * CONFIG.latentChannels, 2), shape);
    const [out] = await download([tf.tidy(() => rectify(r, quantized))]);
    const variables = r.bindings.map((b) => b.param as tf.Variable);
    const { value, grads } = tf.variableGrads(() => rectifierLoss(r, quantized, target), variables);
    const gradData = await download(variables.map((v) => grads[v.name]));
    tf.dispose([value, quantized, target]);
    disposeRectifier(r);
    return { out, grads: gradData };
  });
}

describe("the same rectifier on every backend", () => {
  for (const backend of ["wasm", "webgpu"] as const) {
    it.skipIf(backend === "webgpu" && !webgpu)(
      `runs forward and backward on ${backend} as on cpu`,
      async () => {
        const reference = await forwardBackward("cpu");
        const other = await forwardBackward(backend);
        expect(scaledError(other.out, reference.out)).toBeLessThan(CROSS_BACKEND.output);
        other.grads.forEach((g, i) => {
          expect(scaledError(g, reference.grads[i]), `grad ${i}`).toBeLessThan(CROSS_BACKEND.grad);
        });
      },
    );
  }
});

describe("a residual rectifier", () => {
  const RESIDUAL: RectifierConfig = { ...CONFIG, residual: true };
  const shape: [number, number, number, number] = [2, 4, 4, CONFIG.latentChannels];

  it("starts as the identity, and only conv_out has a gradient at the start", () =>
    runOn("cpu", async () => {
      const r = await initRectifier(RESIDUAL, 7);
      const input = values(32 * CONFIG.latentChannels, 1);
      const quantized = tf.tensor4d(input, shape);
      const target = tf.tensor4d(values(32 * CONFIG.latentChannels, 2), shape);
      const [out] = await download([tf.tidy(() => rectify(r, quantized))]);
      expect(out).toEqual(input);
      const variables = r.bindings.map((b) => b.param as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => rectifierLoss(r, quantized, target),
        variables,
      );
      for (const b of r.bindings) {
        const g = await grads[(b.param as tf.Variable).name].abs().max().data();
        const [name] = b.names;
        if (name.startsWith("conv_out.")) expect(g[0], name).toBeGreaterThan(0);
        else expect(g[0], name).toBe(0);
      }
      tf.dispose([value, quantized, target, ...Object.values(grads)]);
      disposeRectifier(r);
    }));

  it("adds the plain stage's output to its input", () =>
    runOn("cpu", async () => {
      // The same (non-zero) weights read as a plain and as a residual rectifier.
      const plain = await initRectifier(CONFIG, 7);
      const residual = { ...plain, config: RESIDUAL };
      const quantized = tf.tensor4d(values(32 * CONFIG.latentChannels, 1), shape);
      const [sum, expected] = await download([
        tf.tidy(() => rectify(residual, quantized)),
        tf.tidy(() => tf.add(quantized, rectify(plain, quantized))),
      ]);
      expect(sum).toEqual(expected);
      quantized.dispose();
      disposeRectifier(plain);
    }));
});
