import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadVae } from "../../../gpu-worker/src/models/load-vae.ts";
import { safetensorsSource } from "../../../gpu-worker/src/models/sources.ts";
import type { ImageSize, Vae } from "../../../gpu-worker/src/models/vae.ts";
import { FIXTURES_DIR } from "../../helpers/fixtures.ts";

/** fixtures D's tiny DC-AE (8 latent channels, f4) behind the Vae interface, at `size`. */
export async function loadFixtureVae(size: ImageSize): Promise<Vae> {
  const config = JSON.parse(readFileSync(join(FIXTURES_DIR, "dcae_config.json"), "utf8"));
  const weights = new Uint8Array(readFileSync(join(FIXTURES_DIR, "dcae_weights.safetensors")));
  return loadVae(
    {
      name: "dcae-tiny-fixture",
      kind: "dcae",
      inputResolution: size,
      latentShape: { channels: 8, height: size.height / 4, width: size.width / 4 },
      config,
    },
    safetensorsSource(weights),
  );
}
