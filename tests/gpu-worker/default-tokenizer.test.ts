import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type FileRef, manifestHash, parseManifest } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { withTokenizerFolder } from "../../gpu-worker/src/pipeline/tokenizer-folder.ts";
import { detokenize, tokenize } from "../../gpu-worker/src/pipeline/tokens.ts";
import { psnr } from "../../gpu-worker/src/train/image-metrics.ts";
import { runOn } from "./helpers/backends.ts";
import { readCropStrip } from "./helpers/crop-strip.ts";

const SHIPPED = join(import.meta.dirname, "../../models/default-tokenizer");
const VAE = join(import.meta.dirname, "../../models/default-vae");
const read = (dir: string, path: string) => new Uint8Array(readFileSync(join(dir, path)));
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * The target: on held-out crops the tokenizer's reconstruction PSNR is within 1.5 dB of
 * the default VAE's own (checked here on the VAE's nine shipped held-out crops, models/default-
 * vae/heldout-crops.png; EVALUATION.json has the 63-crop figures).
 */
const MAX_GAP_DB = 1.5;

describe("the shipped default tokenizer (models/default-tokenizer)", () => {
  it("parses with the shared schema, and its files are the ones it pins", async () => {
    const raw = JSON.parse(readFileSync(join(SHIPPED, "manifest.json"), "utf8"));
    const manifest = parseManifest(raw);
    expect(manifest.quantizer.tokens * manifest.quantizer.codeDim).toBe(8 * 16 * 16);
    const refs: FileRef[] = [manifest.files.stats, manifest.files.codebook];
    if (manifest.files.rectifier) refs.push(manifest.files.rectifier);
    if (manifest.vae.weights) refs.push(manifest.vae.weights);
    for (const ref of refs) {
      const bytes = read(SHIPPED, ref.path);
      expect(bytes.length, ref.path).toBe(ref.bytes);
      expect(sha256(bytes), ref.path).toBe(ref.sha256);
    }
    // Its VAE is the default VAE, byte for byte.
    const vae = JSON.parse(readFileSync(join(VAE, "manifest.json"), "utf8")).vae;
    expect(manifest.vae.weights?.sha256).toBe(vae.weights.sha256);
    expect(manifest.vae.kind).toBe(vae.kind);
    expect(manifest.vae.config).toEqual(vae.config);
    expect(manifest.vae.latentShape).toEqual(vae.latentShape);
    expect(await manifestHash(manifest)).toMatch(/^[0-9a-f]{64}$/);
  });

  it(`reconstructs the default VAE's held-out crops within ${MAX_GAP_DB} dB of the VAE on wasm, better with its rectifier than without`, async () => {
    const strip = JSON.parse(readFileSync(join(VAE, "manifest.json"), "utf8")).evaluation.testCrops;
    const side = 64;
    const { images, count } = await readCropStrip(join(VAE, strip.file), side);
    const { ids, decoded, plain, vaeOnly, k } = await runOn("wasm", () =>
      withTokenizerFolder(SHIPPED, async (t) => {
        const ids = await tokenize(t, images, count);
        const decoded = await detokenize(t, ids, count);
        const plain = await detokenize({ ...t, rectifier: null }, ids, count);
        const vaeOnly = await t.vae.decode(await t.vae.encode(images, count), count);
        const k = t.manifest.quantizer.codesPerGroup;
        return { ids, decoded, plain, vaeOnly, k };
      }),
    );
    expect(ids.length).toBe(count * 512);
    expect(Math.max(...ids)).toBeLessThan(k);
    const meanPsnr = (out: Float32Array) =>
      [...psnr(out, images, count, { height: side, width: side })].reduce((a, b) => a + b, 0) /
      count;
    expect(meanPsnr(vaeOnly) - meanPsnr(decoded)).toBeLessThan(MAX_GAP_DB);
    // The rectifier earns its place: the same tokens score higher with it than with the codebook alone.
    expect(meanPsnr(decoded)).toBeGreaterThan(meanPsnr(plain));
  });
});
