/** The VAE a manifest describes, by its `vae.kind`: each kind's adapter lives with its model. */
import { loadDcaeVae } from "./dcae/vae.ts";
import { loadSmallConvVae } from "./small-vae/vae.ts";
import type { Vae, VaeSpec } from "./vae.ts";
import type { TensorSource } from "./weights.ts";

/** The VAE a manifest describes, with its weights from `weights`. */
export async function loadVae(spec: VaeSpec, weights: TensorSource): Promise<Vae> {
  switch (spec.kind) {
    case "dcae":
      return loadDcaeVae(spec, weights);
    case "small-conv":
      return loadSmallConvVae(spec, weights);
  }
}
