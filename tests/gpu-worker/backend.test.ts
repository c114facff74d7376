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
