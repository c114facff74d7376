/**
 * Counts the WebGPU work a piece of code really does, by wrapping Dawn's objects (they are
 * globals once the webgpu backend started): compute dispatches, queue submits, buffers created
 * and buffer maps (each a read back to the host or a mapped upload). These counts do not depend
 * on the machine: a software adapter gives the figures a GPU would.
 */

export type GpuWork = {
  dispatches: number;
  submits: number;
  newBuffers: number;
  bufferMaps: number;
};

const counts: GpuWork = { dispatches: 0, submits: 0, newBuffers: 0, bufferMaps: 0 };
let installed = false;

type Prototype = Record<string, (...args: unknown[]) => unknown>;

function wrap(className: string, method: string, counter: keyof GpuWork): void {
  const prototype = (globalThis as unknown as Record<string, { prototype: Prototype }>)[className]
    ?.prototype;
  if (!prototype) throw new Error(`gpu-work: no ${className}; start the webgpu backend first`);
  const original = prototype[method];
  prototype[method] = function (this: unknown, ...args: unknown[]) {
    counts[counter]++;
    return original.apply(this, args);
  };
}

function install(): void {
  if (installed) return;
  wrap("GPUComputePassEncoder", "dispatchWorkgroups", "dispatches");
  wrap("GPUQueue", "submit", "submits");
  wrap("GPUDevice", "createBuffer", "newBuffers");
  wrap("GPUBuffer", "mapAsync", "bufferMaps");
  installed = true;
}

/** The work `fn` does, awaited (on the webgpu backend only). */
export async function countGpuWork<T>(
  fn: () => T | Promise<T>,
): Promise<{ result: T; work: GpuWork }> {
  install();
  const before = { ...counts };
  const result = await fn();
  return { result, work: since(before) };
}

/** The compute dispatches `fn` records (tfjs dispatches a kernel as it is called). */
export function dispatchesOf(fn: () => void): number {
  install();
  const before = { ...counts };
  fn();
  return since(before).dispatches;
}

function since(before: GpuWork): GpuWork {
  return {
    dispatches: counts.dispatches - before.dispatches,
    submits: counts.submits - before.submits,
    newBuffers: counts.newBuffers - before.newBuffers,
    bufferMaps: counts.bufferMaps - before.bufferMaps,
  };
}
