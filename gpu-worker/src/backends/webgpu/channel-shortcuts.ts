/**
 * ops/channel-shortcuts.ts's two ops on webgpu, one dispatch each: one thread per output value,
 * which gathers its inputs by index (the space factor s is compiled in), adds the residual if
 * there is one, and writes once.
 */
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import { CHANNEL_MEANS, CHANNEL_REPEATS, type ShortcutAttrs } from "../../ops/channel-shortcuts.ts";
import { i32, workgroupProgram } from "./program.ts";

const THREADS = 64;

/**
 * Output coordinates of thread `index` over [B,H,W,C] (uniforms.outShape), as b, oy, ox, c;
 * then the op's own gather from x, into `value`.
 */
function program(
  name: string,
  space: number,
  outputShape: number[],
  residual: boolean,
  gather: string,
): WebGPUProgram {
  const size = tf.util.sizeFromShape(outputShape);
  return workgroupProgram({
    key: `${name}_${space}_${residual}`,
    variableNames: residual ? ["x", "residual"] : ["x"],
    outputShape,
    groups: Math.ceil(size / THREADS),
    threads: THREADS,
    uniforms: "size : i32,",
    body: `
    const S = ${space};
    fn main(index : i32) {
      if (index >= uniforms.size) {
        return;
      }
      let C = uniforms.outShape.w;
      let W = uniforms.outShape.z;
      let H = uniforms.outShape.y;
      let c = index % C;
      let ox = (index / C) % W;
      let oy = (index / (C * W)) % H;
      let b = index / (C * W * H);
      let xH = uniforms.xShape.y;
      let xW = uniforms.xShape.z;
      let xC = uniforms.xShape.w;
      ${gather}
      result[index] = value${residual ? " + residual[index]" : ""};
    }`,
  });
}

/**
 * Output channel c averages the unshuffled channels u = c·g + k (k < g); u is input channel
 * u / s² at (s·oy + dy, s·ox + dx), with dy = (u % s²) / s and dx = u % s.
 */
const MEANS = `
      let g = S * S * xC / C;
      var total = 0.0;
      for (var k = 0; k < g; k = k + 1) {
        let u = c * g + k;
        let iy = S * oy + (u % (S * S)) / S;
        let ix = S * ox + u % S;
        total = total + x[((b * xH + iy) * xW + ix) * xC + u / (S * S)];
      }
      let value = total / f32(g);`;

/**
 * Output (oy, ox, c) is the shuffled channel u = s²c + s·(oy % s) + ox % s at (oy / s, ox / s),
 * a repeat of input channel u / r.
 */
const REPEATS = `
      let r = S * S * C / xC;
      let u = S * S * c + S * (oy % S) + ox % S;
      let value = x[((b * xH + oy / S) * xW + ox / S) * xC + u / r];`;

function kernel(
  kernelName: string,
  name: string,
  gather: string,
  outShape: (x: number[], attrs: ShortcutAttrs) => number[],
): tf.KernelConfig {
  return {
    kernelName,
    backendName: "webgpu",
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, residual } = inputs as { x: tf.TensorInfo; residual?: tf.TensorInfo };
      const shortcut = attrs as unknown as ShortcutAttrs;
      const shape = outShape(x.shape, shortcut);
      const size = tf.util.sizeFromShape(shape);
      return (backend as WebGPUBackend).runWebGPUProgram(
        program(name, shortcut.space, shape, residual !== undefined, gather),
        residual ? [x, residual] : [x],
        "float32",
        [i32(size)],
      );
    },
  };
}

export const channelMeansKernel = kernel(
  CHANNEL_MEANS,
  "channel_means",
  MEANS,
  ([b, h, w], { space, channels }) => [b, h / space, w / space, channels],
);

export const channelRepeatsKernel = kernel(
  CHANNEL_REPEATS,
  "channel_repeats",
  REPEATS,
  ([b, h, w], { space, channels }) => [b, h * space, w * space, channels],
);
