import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseManifest, sha256Hex } from "@revq/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { withTokenizerFolder } from "../../gpu-worker/src/pipeline/tokenizer-folder.ts";
import { buildTinyTokenizer, syntheticImage } from "../e2e/support/tiny-tokenizer.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = join(ROOT, "gpu-worker/src/train/cli.ts");

let dir: string;

function revqTrain(
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

// The tiny test tokenizer's VAE (the fixture DC-AE at 32×32, latents 8×8×8) and 28 synthetic
// images: 3 held out, 25 to train in batches of 8 (3 steps an epoch).
const TRAINING = [
  "--tokens",
  "128",
  "--codes",
  "16",
  "--epochs",
  "2",
  "--batch-size",
  "8",
  "--seed",
  "4",
];
const RECTIFIER = JSON.stringify({
  rectifier: { channels: 16, blocks: 1, headDim: 8, multiscales: [5] },
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "revq-train-cli-"));
  await selectBackend("wasm");
  const base = await buildTinyTokenizer();
  for (const [path, bytes] of base.files) {
    mkdirSync(dirname(join(dir, "base", path)), { recursive: true });
    writeFileSync(join(dir, "base", path), bytes);
  }
  writeFileSync(join(dir, "base", "manifest.json"), base.manifestBytes);
  mkdirSync(join(dir, "images"));
  for (let i = 0; i < 28; i++) {
    writeFileSync(
      join(dir, "images", `${String(i).padStart(3, "0")}.png`),
      await syntheticImage(500 + i),
    );
  }
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("revq-train", () => {
  const common = () => [
    "--images",
    join(dir, "images"),
    "--vae",
    join(dir, "base"),
    "--out",
    join(dir, "out"),
    "--backend",
    "wasm",
    "--held-out",
    "3",
    "--probe",
    "2",
    "--shard-size",
    "10",
  ];

  it("trains on an images folder and writes a tokenizer folder; resumes; refuses to clobber", async () => {
    const first = await revqTrain(...common(), ...TRAINING, "--params", RECTIFIER);
    expect(first.stderr).toContain("latents: 28/28 extracted");
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/epoch.*loss q.*PSNR/);
    expect(first.stdout).toMatch(/^ +2\/2 /m);
    const manifestBytes = readFileSync(join(dir, "out", "manifest.json"));
    const manifest = parseManifest(JSON.parse(manifestBytes.toString("utf8")));
    const hash = await sha256Hex(new Uint8Array(manifestBytes));
    expect(first.stdout).toContain(`tokenizer ${hash}`);
    expect(first.stdout).toContain("512 bits (64 bytes) per image");
    expect(manifest.quantizer).toEqual({ tokens: 128, groups: 128, codeDim: 4, codesPerGroup: 16 });
    expect(manifest.rectifier).toMatchObject({
      architecture: "dcae-decoder-stage",
      channels: 16,
      blocks: 1,
    });
    expect(manifest.training?.epochs).toBe(2);
    expect(manifest.training?.dataset).toEqual({ name: "images", images: 28 });
    expect(manifest.training?.metrics?.valPsnr).toBeGreaterThan(0);
    for (const ref of [
      manifest.files.stats,
      manifest.files.codebook,
      manifest.files.rectifier,
      manifest.vae.weights,
    ]) {
      const bytes = new Uint8Array(readFileSync(join(dir, "out", ref?.path as string)));
      expect(await sha256Hex(bytes)).toBe(ref?.sha256);
    }

    const again = await revqTrain(...common(), ...TRAINING);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/holds a run at epoch 2\/2: --resume continues it/);

    const mixed = await revqTrain(...common(), "--resume", "--epochs", "3");
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/keeps its checkpoint's training parameters/);

    // Nothing left to train: the same run exports the same tokenizer, from cached latents.
    const resumed = await revqTrain(...common(), "--resume");
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain("latents: 28/28 (cached)");
    expect(resumed.stderr).toContain("resuming after epoch 2/2");
    expect(resumed.stdout).toContain(`tokenizer ${hash}`);

    // The latent cache is itself an input.
    const cache = /latents: 28 in (\S+)/.exec(first.stderr)?.[1] as string;
    const fromLatents = await revqTrain(
      ...["--latents", cache, "--vae", join(dir, "base"), "--out", join(dir, "out2")],
      ...["--backend", "wasm", "--held-out", "3", ...TRAINING, "--params", RECTIFIER],
    );
    expect(fromLatents.code, fromLatents.stderr).toBe(0);
    const second = JSON.parse(readFileSync(join(dir, "out2", "manifest.json"), "utf8"));
    expect(second.training.dataset.images).toBe(28);
    expect(second.training.metrics.valPsnr).toBeUndefined();
    expect(second.evaluation).toMatchObject({ heldOut: { latents: 3, images: 0 } });

    // Thresholds it cannot meet (every code of every group used): nothing is written.
    const strict = JSON.stringify({ ...JSON.parse(RECTIFIER), require: { minUsage: 1 } });
    const missed = await revqTrain(
      ...["--latents", cache, "--vae", join(dir, "base"), "--out", join(dir, "out3")],
      ...["--backend", "wasm", "--held-out", "3", ...TRAINING, "--params", strict],
    );
    expect(missed.code, missed.stderr).toBe(1);
    expect(missed.stderr).toMatch(
      /^revq-train: the tokenizer misses the thresholds of --params, so it was not written: least group's usage 0\.\d{3}, below the 1 required\n$/m,
    );
    expect(existsSync(join(dir, "out3", "manifest.json"))).toBe(false);
  }, 90_000);

  it("says what is wrong with bad usage", async () => {
    const none = await revqTrain("--out", join(dir, "x"));
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/give --vae, --out, and one of --images or --latents/);
    const bad = await revqTrain(...common(), "--epochs", "0", "--work", join(dir, "w2"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid training parameters: epochs/);
    const unknown = await revqTrain("--epoch", "3");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--epoch'/);
  }, 60_000);

  it("trains on the shipped default VAE (models/default-vae), its weights travelling on; a residual rectifier", async () => {
    const out = join(dir, "on-default-vae");
    const done = await revqTrain(
      ...["--images", join(dir, "images"), "--vae", join(ROOT, "models/default-vae")],
      ...["--out", out, "--backend", "wasm", "--held-out", "2", "--probe", "1"],
      ...["--tokens", "512", "--codes", "8", "--epochs", "1", "--batch-size", "8"],
      ...[
        "--params",
        JSON.stringify({
          rectifier: { channels: 8, blocks: 1, headDim: 8, multiscales: [3], residual: true },
        }),
      ],
    );
    expect(done.code, done.stderr).toBe(0);
    const manifest = parseManifest(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")));
    const shipped = JSON.parse(
      readFileSync(join(ROOT, "models/default-vae/manifest.json"), "utf8"),
    );
    expect(manifest.vae).toEqual({
      ...shipped.vae,
      weights: { ...shipped.vae.weights, path: "vae.safetensors" },
    });
    expect(manifest.vae.latentShape).toEqual({ channels: 8, height: 16, width: 16 });
    expect(manifest.rectifier).toMatchObject({ channels: 8, residual: true });
    const residual = await withTokenizerFolder(out, async (t) => t.rectifier?.config.residual);
    expect(residual).toBe(true);
  }, 60_000);
});
