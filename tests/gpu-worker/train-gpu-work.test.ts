import { createCodebook, quantLayout } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { countGpuWork, type GpuWork } from "../../bench/lib/gpu-work.ts";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import {
  disposeRectifier,
  initRectifier,
  RECTIFIER_PRESETS,
} from "../../gpu-worker/src/models/rectifier.ts";
import { disposeAdamW } from "../../gpu-worker/src/train/adamw.ts";
import { createQuantizer, disposeQuantizer } from "../../gpu-worker/src/train/quantizer.ts";
import { createTrainState, trainStep } from "../../gpu-worker/src/train/step.ts";
import { values } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI).
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);

const LATENT = { channels: 4, height: 4, width: 4 };
const LAYOUT = quantLayout(LATENT, 16);

/** What the third of three steps at this batch asks of the GPU (the first two warm it up). */
async function steadyStep(batch: number): Promise<GpuWork> {
  const dims = LAYOUT.tokens * LAYOUT.codeDim;
  const codebook = createCodebook(LAYOUT.groups, 32, LAYOUT.codeDim, values(16 * 32 * 4, 1));
  const state = createTrainState({
    latentShape: LATENT,
    quantizer: createQuantizer(LAYOUT, codebook),
    rectifier: await initRectifier(RECTIFIER_PRESETS.tiny, 1),
    learningRates: { quantizer: 0.01, rectifier: 0.0005 },
    rectifierWeightDecay: 1e-4,
    assignment: "device",
  });
  const step = async (seed: number) => (await trainStep(state, values(batch * dims, seed))).metrics;
  await step(2);
  await step(3);
  const { work } = await countGpuWork(async () => {
    // Queued and awaited as run.ts does: the numbers are read once the step is on the device.
    await step(4);
  });
  disposeQuantizer(state.quantizer);
  disposeRectifier(state.rectifier);
  disposeAdamW(state.optimizer);
  state.counts.dispose();
  return work;
}

describe("the GPU work of a steady-state training step (webgpu)", () => {
  it.skipIf(!webgpu)("creates no buffer, maps one, and does not grow with the batch", async () => {
    await selectBackend("webgpu");
    const one = await steadyStep(1);
    const eight = await steadyStep(8);
    expect(one.newBuffers).toBe(0);
    expect(one.bufferMaps).toBe(1);
    expect(eight).toEqual(one);
    // 570 before the fused ops; bench/train records the paper's shape (376 there now).
    expect(one.dispatches).toBeLessThan(300);
  });
});
