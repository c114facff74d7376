import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { openSafetensorsFile } from "../../gpu-worker/src/io/safetensors-file.ts";
import { parseDcaeConfig } from "../../gpu-worker/src/models/dcae/config.ts";
import {
  type Dcae,
  decode,
  disposeDcae,
  encode,
  loadDcae,
  loadDcaeDecoder,
  loadDcaeEncoder,
} from "../../gpu-worker/src/models/dcae/model.ts";
import { dcaePreset } from "../../gpu-worker/src/models/dcae/presets.ts";
import { runBlock } from "../../gpu-worker/src/models/nn/blocks.ts";
import { NO_PROBE, recordingProbe } from "../../gpu-worker/src/models/nn/probe.ts";
import { safetensorsSource } from "../../gpu-worker/src/models/sources.ts";
import { toTorch } from "../../gpu-worker/src/models/weights.ts";
import { FIXTURES_DIR, loadFixture, maxAbsDiff } from "../helpers/fixtures.ts";
import { runOn } from "./helpers/backends.ts";
import { loadFixtureDcae, nchwToNhwc, toNchw } from "./helpers/dcae-fixture.ts";

// fixtures README §7: a float32 port should match latents within 5e-5 and decodings within 1e-5.
const LATENT_TOL = 5e-5;
const DECODED_TOL = 1e-5;
const BLOCK_TOL = 1e-5; // × max(1, max|expected|), for block outputs and trace entries

const io = loadFixture("dcae_io", "dcae_fixture");
const SIZES = Object.keys(io.json.inputs as Record<string, string>);

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

describe("DC-AE config and weights (fixtures D)", () => {
  it("reads the diffusers config.json", () => {
    const json = JSON.parse(readFileSync(join(FIXTURES_DIR, "dcae_config.json"), "utf8"));
    const config = parseDcaeConfig(json);
    expect(config.encoder.stages.map((s) => s.channels)).toEqual(json.encoder_block_out_channels);
    expect(config.decoder.stages.map((s) => s.layers)).toEqual(json.decoder_layers_per_block);
    expect(config.scalingFactor).toBe(json.scaling_factor);
    const [, , h] = io.shape(`x_${SIZES[0]}`);
    expect(config.spatialCompression).toBe(h / io.shape(`latent_${SIZES[0]}`)[2]);
    expect(() => parseDcaeConfig({ ...json, decoder_norm_types: "batch_norm" })).toThrow(
      /rms_norm/,
    );
  });

  it("has the paper's preset: dc-ae-f32c32-sana-1.1, 256×256 → 32×8×8", () => {
    const config = dcaePreset("dc-ae-f32c32-sana-1.1");
    expect(256 / config.spatialCompression).toBe(8);
    expect(config.encoder.latentChannels).toBe(32);
    expect(config.decoder.stages.map((s) => s.type)).toEqual(
      config.encoder.stages.map((s) => s.type),
    );
  });

  it("refuses a checkpoint of another configuration, naming the tensor", async () => {
    const json = JSON.parse(readFileSync(join(FIXTURES_DIR, "dcae_config.json"), "utf8"));
    const bytes = new Uint8Array(readFileSync(join(FIXTURES_DIR, "dcae_weights.safetensors")));
    const wrong = parseDcaeConfig({ ...json, latent_channels: json.latent_channels * 2 });
    await runOn("cpu", async () => {
      const before = tf.memory().numTensors;
      await expect(loadDcae(wrong, safetensorsSource(bytes))).rejects.toThrow(
        /encoder\.conv_out\.weight/,
      );
      expect(tf.memory().numTensors).toBe(before); // what was loaded before the error is freed
    });
  });

  it("loads one half alone, strictly within it", async () => {
    const json = JSON.parse(readFileSync(join(FIXTURES_DIR, "dcae_config.json"), "utf8"));
    const bytes = new Uint8Array(readFileSync(join(FIXTURES_DIR, "dcae_weights.safetensors")));
    const weights = loadFixture("dcae_weights", "dcae_fixture");
    await runOn("cpu", async () => {
      for (const half of ["encoder", "decoder"] as const) {
        const load = half === "encoder" ? loadDcaeEncoder : loadDcaeDecoder;
        const { bindings } = await load(parseDcaeConfig(json), safetensorsSource(bytes));
        const names = bindings.flatMap((b) => b.names).toSorted();
        expect(names).toEqual(
          weights
            .names()
            .filter((n) => n.startsWith(`${half}.`))
            .toSorted(),
        );
        tf.dispose(bindings.map((b) => b.param));
      }
    });
  });

  it("loads every tensor of a file on disk, strictly, and writes each back unchanged", async () => {
    await runOn("cpu", async () => {
      const json = JSON.parse(readFileSync(join(FIXTURES_DIR, "dcae_config.json"), "utf8"));
      const file = await openSafetensorsFile(join(FIXTURES_DIR, "dcae_weights.safetensors"));
      const model = await loadDcae(parseDcaeConfig(json), file);
      await file.close();
      const count = model.bindings.reduce((n, b) => n + b.param.size, 0);
      expect(count).toBe(io.json.num_parameters);
      // Written back in PyTorch layout, every tensor is the one that was loaded.
      const weights = loadFixture("dcae_weights", "dcae_fixture");
      const names: string[] = [];
      for (const binding of model.bindings) {
        for (const [name, data] of await toTorch(binding)) {
          expect(data).toEqual(weights.f32(name));
          names.push(name);
        }
      }
      expect(names.toSorted()).toEqual(weights.names().toSorted());
      disposeDcae(model);
    });
  });
});

/**
 * webgpu runs where Dawn finds an adapter: a GPU through Vulkan, or Mesa's llvmpipe through
 * OpenGL ES (Debian's libegl-mesa0, libgles2, libgl1-mesa-dri). Without one it is skipped.
 */
const webgpu = await selectBackend("webgpu").then(
  () => true,
  () => false,
);
const BACKENDS = ["cpu", "wasm", "webgpu"] as const;

for (const backend of BACKENDS) {
  describe.skipIf(backend === "webgpu" && !webgpu)(
    `DC-AE parity on ${backend} (fixtures D)`,
    () => {
      let model: Dcae;
      beforeAll(async () => {
        model = await runOn(backend, loadFixtureDcae);
      });
      afterAll(() => disposeDcae(model));

      // cpu (pure JS) needs ~9 s for 128×128 on 2 cores and a software webgpu device more; wasm
      // runs every size.
      for (const size of SIZES.filter((s) => backend === "wasm" || s !== "128")) {
        it(`encodes and decodes ${size}`, async () => {
          const before = tf.memory().numTensors;
          const x = nchwToNhwc(io.f32(`x_${size}`), io.shape(`x_${size}`));
          const latent = await toNchw(tf.tidy(() => encode(model.encoder, x)));
          const z = nchwToNhwc(io.f32(`latent_${size}`), io.shape(`latent_${size}`));
          const decoded = await toNchw(tf.tidy(() => decode(model.decoder, z)));
          tf.dispose([x, z]);
          expect(tf.memory().numTensors).toBe(before);
          expect(maxAbsDiff(latent, io.f32(`latent_${size}`))).toBeLessThan(LATENT_TOL);
          expect(maxAbsDiff(decoded, io.f32(`decoded_${size}`))).toBeLessThan(DECODED_TOL);
        });
      }

      for (const size of SIZES.filter((s) =>
        io.names().includes(`evit_encoder_first_input_${s}`),
      )) {
        it(`runs the first EfficientViT blocks at ${size}`, async () => {
          for (const [side, stage] of [
            ["encoder", model.encoder.stages.at(-1)],
            ["decoder", model.decoder.stages.at(-1)],
          ] as const) {
            const input = io.f32(`evit_${side}_first_input_${size}`);
            const expected = io.f32(`evit_${side}_first_output_${size}`);
            const block = stage?.[0];
            if (block?.kind !== "evit")
              throw new Error(`${side}: the last stage starts with ${block?.kind}`);
            const actual = await toNchw(
              tf.tidy(() => {
                const x = nchwToNhwc(input, io.shape(`evit_${side}_first_input_${size}`));
                return runBlock(block, x, NO_PROBE);
              }),
            );
            expect(maxAbsDiff(actual, expected)).toBeLessThan(
              BLOCK_TOL * Math.max(1, maxAbs(expected)),
            );
          }
        });
      }
    },
  );
}

// Linear and RMSNorm modules run channels-last in diffusers, so their trace entries are NHWC.
const NHWC_ENTRY = /(\.to_[qkv]|\.to_out|norm_out|\.norm):(in|out)$/;

for (const backend of BACKENDS) {
  it.skipIf(backend === "webgpu" && !webgpu)(
    `matches the block-by-block trace of a 32×32 image on ${backend}`,
    async () => {
      const trace = loadFixture("dcae_trace_32", "dcae_fixture");
      const keys = trace.json.trace_keys_in_execution_order as string[];
      const model = await runOn(backend, loadFixtureDcae);
      const seen = new Map<string, tf.Tensor>();
      tf.tidy(() => {
        const x = nchwToNhwc(trace.f32("__input"), trace.shape("__input"));
        const latent = encode(model.encoder, x, recordingProbe(seen, "encoder"));
        decode(model.decoder, latent, recordingProbe(seen, "decoder"));
      });
      disposeDcae(model);
      for (const key of keys) {
        const ours = seen.get(key);
        if (!ours) throw new Error(`no value was recorded for ${key}`);
        const actual = NHWC_ENTRY.test(key)
          ? ((await ours.data()) as Float32Array)
          : await toNchw(ours);
        const expected = trace.f32(key);
        const error = maxAbsDiff(actual, expected) / Math.max(1, maxAbs(expected));
        expect(error, key).toBeLessThan(BLOCK_TOL);
      }
      tf.dispose([...seen.values()]);
    },
  );
}

describe("DC-AE memory", () => {
  // Block by block, each activation is freed once the next exists. Under one tidy around the
  // network all of them lived until its end: the peak was 0.86 (encode) and 0.89 (decode) of
  // every kernel's output together; block by block 0.33 and 0.27.
  it.each(["encode", "decode"] as const)(
    "%s peaks at under half the bytes its kernels make",
    async (half) => {
      await selectBackend("cpu");
      const model = await loadFixtureDcae();
      const input =
        half === "encode"
          ? (tf.randomUniform([2, 64, 64, 3], -1, 1) as tf.Tensor4D)
          : (tf.randomNormal([2, 16, 16, 8]) as tf.Tensor4D);
      const before = tf.memory().numBytes;
      const profile = await tf.profile(() => {
        const out = tf.tidy(() =>
          half === "encode" ? encode(model.encoder, input) : decode(model.decoder, input),
        );
        out.dispose();
      });
      const made = profile.kernels.reduce((sum, k) => sum + Math.max(0, k.bytesAdded), 0);
      const peak = profile.peakBytes - before;
      tf.dispose(input);
      disposeDcae(model);
      expect(profile.newBytes).toBe(0);
      expect(peak).toBeLessThan(0.5 * made);
    },
  );
});
