import { existsSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { isBackendChoice, selectBackend } from "../../gpu-worker/src/backend.ts";

describe("selectBackend", () => {
  it("starts the cpu and wasm backends by name and makes them current", async () => {
    for (const name of ["cpu", "wasm"] as const) {
      const selection = await selectBackend(name);
      expect(selection.backend).toBe(name);
      expect(tf.getBackend()).toBe(name);
      expect(selection.reason).toContain("as asked");
    }
  });

  it("auto takes the first backend that started, and says which and why", async () => {
    const selection = await selectBackend("auto");
    expect(tf.getBackend()).toBe(selection.backend);
    const chosen = selection.attempts.find((a) => a.backend === selection.backend);
    expect(chosen?.ok).toBe(true);
    expect(selection.reason).toContain(chosen?.detail);
    // Everything tried before it failed to start or was a software WebGPU adapter.
    for (const attempt of selection.attempts.slice(0, -1)) {
      expect(attempt.ok === false || attempt.detail.includes("passed over")).toBe(true);
    }
  });

  it("auto says it in one short line, and opens no software WebGPU device to pass it over", async () => {
    const selection = await selectBackend("auto");
    expect(selection.reason).not.toContain("\n");
    expect(selection.reason.length).toBeLessThan(240);
    const webgpu = selection.attempts.find((a) => a.backend === "webgpu");
    if (webgpu && !webgpu.ok && !existsSync("/usr/lib/x86_64-linux-gnu/libvulkan.so.1")) {
      // No loader, no hardware adapter: Dawn is not even started (so it prints no warnings).
      expect(webgpu.detail).toMatch(/no Vulkan loader/);
    }
  });

  it("reports a missing tfjs-node-gpu as an error that names the package", async () => {
    const installed = await import("@tensorflow/tfjs-node-gpu" as string).then(
      () => true,
      () => false,
    );
    if (installed) return; // a GPU box: nothing to check here
    await expect(selectBackend("tensorflow")).rejects.toThrow(/tfjs-node-gpu is not installed/);
  });

  it("knows its choices", () => {
    expect(["auto", "tensorflow", "webgpu", "wasm", "cpu"].every(isBackendChoice)).toBe(true);
    expect(isBackendChoice("webgl")).toBe(false);
  });
});
