/** The `wasm` backend, loading its .wasm files from node_modules, and its missing gradients. */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Started } from "../backend.ts";
import { registerWasmGradientKernels } from "./wasm-gradients.ts";
import { registerContiguousSlice } from "./wasm-slice.ts";

export async function startWasm(): Promise<Started> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const packageJson = createRequire(import.meta.url).resolve(
    "@tensorflow/tfjs-backend-wasm/package.json",
  );
  // A directory prefix: the backend picks the SIMD or plain build itself and reads it from disk.
  wasm.setWasmPaths(`${join(dirname(packageJson), "dist")}/`);
  registerWasmGradientKernels();
  registerContiguousSlice();
  return { device: "WebAssembly (XNNPACK, SIMD, 1 thread)", accelerated: false };
}
