import { ASSIGNMENTS, createCodebook, quantLayout } from "@revq/shared";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { assignCodes } from "../../gpu-worker/src/train/assign.ts";
import { createQuantizer, disposeQuantizer } from "../../gpu-worker/src/train/quantizer.ts";
import {
  FIXTURES_DIR,
  LOCAL_FIXTURES_DIR,
  LOCAL_TRAIN_C,
  loadFixture,
} from "../helpers/fixtures.ts";
import { runOn } from "./helpers/backends.ts";

// webgpu runs where Dawn finds an adapter (Mesa's llvmpipe in CI).
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);

// The reference's indices (fixtures A and C), exact ties included, from both assignment methods.
// A3/A4 have 512/256 groups: the device path is exercised at the paper's token layout.
type Case = {
  name: string;
  layout: ReturnType<typeof quantLayout>;
  codes: number;
  codebook: Float32Array;
  tokens: Float32Array;
  ids: Int32Array;
};

function quantizerCases(): Case[] {
  return ["quantizer_A1", "quantizer_A2", "quantizer_A3", "quantizer_A4"].map((name) => {
    const fx = loadFixture(name);
    const [channels, height, width] = fx.json.input_data_size as number[];
    return {
      name,
      layout: quantLayout(
        { channels, height, width },
        fx.json.tokens_per_data as number,
        fx.json.num_group as number,
      ),
      codes: fx.json.num_code as number,
      codebook: fx.f32("embeddings"),
      tokens: fx.f32("x_shuffle"),
      ids: fx.i32("indices"),
    };
  });
}

/** fixtures C and its instances in tests/fixtures: step s searches the codebook as it was after
 * step s − 1. */
function trainingCases(): Case[] {
  return [["train_C", FIXTURES_DIR], ...LOCAL_TRAIN_C.map((n) => [n, LOCAL_FIXTURES_DIR])].flatMap(
    ([name, dir]) => instanceCases(name, dir),
  );
}

function instanceCases(name: string, dir: string): Case[] {
  const C = loadFixture(name, name, dir);
  const q = C.json.quantizer as Record<string, number>;
  const [channels, height, width] = C.json.input_data_size as number[];
  const layout = quantLayout({ channels, height, width }, q.tokens_per_data, q.num_group);
  return (C.json.steps as { step: number }[]).map(({ step }) => ({
    name: `${name} step ${step}`,
    layout,
    codes: q.num_code,
    codebook: C.f32(
      step === 1 ? "init.quantizer.embeddings" : `after_step${step - 1}.quantizer.embeddings`,
    ),
    tokens: C.f32(`batch_step${step}`),
    ids: C.i32(`indices_step${step}`),
  }));
}

const CASES = [...quantizerCases(), ...trainingCases()];

describe("training's code assignment", () => {
  for (const backend of ["cpu", "wasm", ...(webgpu ? (["webgpu"] as const) : [])] as const) {
    for (const method of ASSIGNMENTS) {
      it(`finds the reference's indices on ${backend} (${method})`, async () => {
        await runOn(backend, async () => {
          const before = tf.memory().numTensors;
          for (const c of CASES) {
            const codebook = createCodebook(c.layout.groups, c.codes, c.layout.codeDim, c.codebook);
            const q = createQuantizer(c.layout, codebook);
            const tokens = tf.tensor2d(c.tokens, [
              c.tokens.length / c.layout.codeDim,
              c.layout.codeDim,
            ]);
            const ids = await assignCodes(method, q, tokens, c.tokens);
            expect([...ids], c.name).toEqual([...c.ids]);
            tokens.dispose();
            disposeQuantizer(q);
          }
          expect(tf.memory().numTensors).toBe(before);
        });
      });
    }
  }

  it("refuses a codebook that does not serve the layout", () => {
    const layout = quantLayout({ channels: 4, height: 4, width: 4 }, 16);
    expect(() => createQuantizer(layout, createCodebook(8, 32, 4))).toThrow(/does not serve/);
  });
});
