/** The `tensorflow` backend: libtensorflow through @tensorflow/tfjs-node-gpu, when installed. */

import type { Started } from "../backend.ts";

// A variable specifier: the package is optional, and TypeScript must not require its types.
const PACKAGE = "@tensorflow/tfjs-node-gpu";

export async function startTensorflow(): Promise<Started> {
  let binding: { version?: Record<string, string> };
  try {
    binding = await import(PACKAGE);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ERR_MODULE_NOT_FOUND") throw new Error(`${PACKAGE} is not installed`);
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new Error(`${PACKAGE} did not load: ${why.slice(0, 120)}`);
  }
  const version = binding.version?.["tfjs-node"] ?? "unknown version";
  return { device: `libtensorflow (CUDA build, tfjs-node ${version})`, accelerated: true };
}
