/**
 * The `webgpu` backend in Node: Dawn's bindings (npm `webgpu`) provide `navigator.gpu`. Vulkan
 * first; where it has no device, Dawn's OpenGL ES backend on a surfaceless EGL display, which
 * Mesa's llvmpipe serves in software.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { Started, StartOptions } from "../backend.ts";
import { foldedAddNKernel, segmentSumKernel } from "./op-kernels.ts";
import { FUSED_WEBGPU_KERNELS } from "./webgpu/kernels.ts";

type Adapter = {
  info: { vendor: string; architecture: string; device: string; description: string };
  limits: Record<string, number>;
  features: { has(name: string): boolean };
  requestDevice(descriptor?: object): Promise<unknown>;
};
type Gpu = { requestAdapter(options?: object): Promise<Adapter | null> };

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader/i;

type OpenDevice = { adapter: Adapter; device: unknown; via: string };

/**
 * Dawn's device, opened once per process. Each opening makes two Dawn instances (one holds an
 * EGL display and the driver's threads); when tests started the backend again and again, the
 * instances left for the garbage collector aborted the process now and then (glibc: "The futex
 * facility returned an unexpected error code"). One device also matches a worker's life.
 */
let opening: Promise<OpenDevice> | undefined;

export async function startWebgpu(options: StartOptions): Promise<Started> {
  // Without Vulkan's loader there is no hardware adapter to find; trying anyway would only make
  // Dawn print its warnings and open a software one for nothing.
  if (options.hardwareOnly && opening === undefined && !hasVulkanLoader()) {
    throw new Error("no Vulkan loader, libvulkan.so.1");
  }
  opening ??= openDevice().catch((error: unknown) => {
    opening = undefined;
    throw error;
  });
  const { adapter, device, via } = await opening;
  const { WritingWebGPUBackend } = await import("./webgpu/writing-backend.ts");
  // Small ops are otherwise computed on the CPU from a synchronous read, which needs an
  // OffscreenCanvas that Node does not have.
  tf.env().set("WEBGPU_CPU_FORWARD", false);
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend(
    "webgpu",
    // biome-ignore lint/suspicious/noExplicitAny: Dawn's objects are the WebGPU types tfjs expects
    () => new WritingWebGPUBackend(device as any, adapter.info as any),
    3,
  );
  // Two tfjs-webgpu kernels fail at training's sizes (op-kernels.ts): UnsortedSegmentSum
  // transposes a (D, segments) result, a dispatch over WebGPU's limit for the paper's codebook
  // (512 × 16384 segments), and AddN binds more storage buffers than a stage may have. The
  // project's own ops (ops/) get their fused WebGPU programs (webgpu/).
  const kernels = [segmentSumKernel("webgpu"), foldedAddNKernel("webgpu"), ...FUSED_WEBGPU_KERNELS];
  for (const kernel of kernels) {
    if (tf.getKernel(kernel.kernelName, "webgpu")) tf.unregisterKernel(kernel.kernelName, "webgpu");
    tf.registerKernel(kernel);
  }
  const { info } = adapter;
  const name = [info.vendor, info.device, info.description].filter(Boolean).join(" ");
  return {
    device: `WebGPU ${via}: ${name || "unnamed adapter"}`,
    accelerated: !SOFTWARE.test(`${info.device} ${info.description}`),
  };
}

async function openDevice(): Promise<OpenDevice> {
  const dawn = await import("webgpu");
  Object.assign(globalThis, dawn.globals);
  const found = await findAdapter(dawn.create as (flags: string[]) => Gpu);
  // The backend module registers its own factory on import when navigator.gpu exists; import it
  // first, so that ours (with this adapter) is the only one.
  await import("./webgpu/writing-backend.ts");
  Object.defineProperty(globalThis, "navigator", {
    value: { ...globalThis.navigator, gpu: found.gpu },
    configurable: true,
    writable: true,
  });
  const device = await found.adapter.requestDevice({
    // Lets tf.profile time each kernel on the GPU (bench/models); unused otherwise.
    requiredFeatures: ["timestamp-query"].filter((name) => found.adapter.features.has(name)),
    requiredLimits: pick(found.adapter.limits, [
      "maxComputeWorkgroupStorageSize",
      "maxComputeWorkgroupsPerDimension",
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxComputeWorkgroupSizeX",
      "maxComputeInvocationsPerWorkgroup",
    ]),
  });
  return { adapter: found.adapter, device, via: found.via };
}

async function findAdapter(
  create: (flags: string[]) => Gpu,
): Promise<{ gpu: Gpu; adapter: Adapter; via: string }> {
  const vulkan = create([]);
  const hardware = await vulkan.requestAdapter({ powerPreference: "high-performance" });
  if (hardware) return { gpu: vulkan, adapter: hardware, via: "(Vulkan)" };
  // Mesa reads EGL_PLATFORM when the display opens, which is after this point.
  process.env.EGL_PLATFORM ??= "surfaceless";
  const gles = create(["backend=opengles"]);
  const software = await gles.requestAdapter({ featureLevel: "compatibility" });
  if (software) return { gpu: gles, adapter: software, via: "(OpenGL ES)" };
  throw new Error("Dawn found no adapter on Vulkan or OpenGL ES");
}

/**
 * Whether Vulkan's loader is where the dynamic linker looks for it. Only Linux is checked: Dawn
 * uses Metal on macOS and D3D on Windows, where nothing here is about Vulkan.
 */
function hasVulkanLoader(): boolean {
  if (process.platform !== "linux") return true;
  const triplet = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean),
    `/usr/lib/${triplet}`,
    `/lib/${triplet}`,
    "/usr/lib64",
    "/lib64",
    "/usr/lib",
    "/usr/local/lib",
  ];
  return dirs.some((dir) => existsSync(join(dir, "libvulkan.so.1")));
}

function pick(limits: Record<string, number>, names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((name) => [name, limits[name]]));
}
