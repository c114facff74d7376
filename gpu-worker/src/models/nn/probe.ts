/**
 * A probe sees intermediate tensors by module path, for block-by-block comparison with the
 * reference (`encoder.down_blocks.2.0.attn.to_q:out`). Paths follow diffusers' module names.
 * The default probe records nothing and computes nothing: values are passed as thunks.
 */

import * as tf from "@tensorflow/tfjs-core";

export type Probe = {
  record(port: "in" | "out", value: () => tf.Tensor): void;
  at(name: string): Probe;
};

export const NO_PROBE: Probe = { record() {}, at: () => NO_PROBE };

/** A probe that keeps (past any tidy) a copy of every recorded tensor under `<path>:<port>`. */
export function recordingProbe(into: Map<string, tf.Tensor>, path = ""): Probe {
  return {
    record(port, value) {
      into.get(`${path}:${port}`)?.dispose();
      into.set(`${path}:${port}`, tf.keep(value().clone()));
    },
    at: (name) => recordingProbe(into, path ? `${path}.${name}` : name),
  };
}
