/**
 * VAEs that a manifest names without shipping their weights (the published DC-AE checkpoints are
 * 1.25 GB: a tokenizer references them rather than copying them into the bucket). The worker
 * looks for them in its models directory, in diffusers' layout, as scripts/download-dcae.ts
 * leaves them:
 *
 *   <models-dir>/<vae.name>/diffusion_pytorch_model.safetensors
 *   <models-dir>/<vae.name>/config.json      (used when the manifest gives no vae.config)
 *
 * The weights are read one tensor at a time, so loading holds at most one tensor beside the model.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { openSafetensorsFile } from "../io/safetensors-file.ts";
import { loadVae } from "../models/load-vae.ts";
import type { Vae, VaeSpec } from "../models/vae.ts";
import { TaskError } from "../task-error.ts";

export const WEIGHTS_FILE = "diffusion_pytorch_model.safetensors";

export async function loadLocalVae(spec: VaeSpec, modelsDir: string): Promise<Vae> {
  if (!/^[A-Za-z0-9._-]+$/.test(spec.name) || spec.name.startsWith(".")) {
    throw new TaskError(
      "tokenizer-invalid",
      `The tokenizer's VAE "${spec.name}" has no weights file, and its name is not a plain directory name to look for them under.`,
      false,
    );
  }
  const dir = join(modelsDir, spec.name);
  const weightsPath = join(dir, WEIGHTS_FILE);
  let weights: Awaited<ReturnType<typeof openSafetensorsFile>>;
  try {
    weights = await openSafetensorsFile(weightsPath);
  } catch (error) {
    // Another worker may have the weights: worth another attempt there.
    throw new TaskError(
      "vae-unavailable",
      `The tokenizer's VAE "${spec.name}" is not in the bucket and this worker does not have it at ${weightsPath} (${(error as Error).message}); put its diffusers files there (scripts/download-dcae.ts).`,
      true,
    );
  }
  try {
    const config = spec.config ?? JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    return await loadVae({ ...spec, config }, weights);
  } catch (error) {
    if (error instanceof TaskError) throw error;
    throw new TaskError(
      "vae-unavailable",
      `The VAE "${spec.name}" at ${dir} does not load: ${(error as Error).message}`,
      true,
    );
  } finally {
    await weights.close();
  }
}
