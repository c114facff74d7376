import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseSafetensors, readTensor } from "../../shared/src/format/safetensors.ts";

/** The reference implementation's golden outputs: ../shared/fixtures beside the repository. */
export const FIXTURES_DIR =
  process.env.REVQ_FIXTURES ?? fileURLToPath(new URL("../../../shared/fixtures/", import.meta.url));

/** Instances this repository made itself (tests/fixtures/README.md), in the shared ones' format. */
export const LOCAL_FIXTURES_DIR = fileURLToPath(new URL("../fixtures/", import.meta.url));

/** The instances of fixture C there: other seeds, and a two-block rectifier. */
export const LOCAL_TRAIN_C = ["train_C_s3101", "train_C_s3201", "train_C_b2c24"];

export type Fixture = {
  json: Record<string, unknown>;
  f32(name: string): Float32Array;
  i32(name: string): Int32Array;
  shape(name: string): readonly number[];
  names(): string[];
};

export function loadFixture(file: string, sidecar = file, dir = FIXTURES_DIR): Fixture {
  const bytes = new Uint8Array(readFileSync(join(dir, `${file}.safetensors`)));
  const parsed = parseSafetensors(bytes);
  const json = JSON.parse(readFileSync(join(dir, `${sidecar}.json`), "utf8"));
  const tensor = (name: string) => readTensor(parsed, name);
  return {
    json,
    f32: (name) => tensor(name).data as Float32Array,
    i32: (name) => tensor(name).data as Int32Array,
    shape: (name) => tensor(name).shape,
    names: () => [...parsed.tensors.keys()],
  };
}

/** Largest |a − b| over two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Largest |a − b| / max(|b|, floor). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    max = Math.max(max, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  }
  return max;
}
