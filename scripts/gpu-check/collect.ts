/**
 * Turns what scripts/gpu-check/run.sh left in its OUT folder into bench/results/ files: the
 * project's figures as the benchmark wrote them (the encode pipeline's with its share of the bare
 * encoder), the PyTorch baseline's from the same run, and
 * the ratios: training steps at the paper's batch sizes (ours ÷ PyTorch's latents/s), DC-AE
 * encode and decode at each of the baseline's shapes (ours ÷ PyTorch's images/s).
 *
 *   npm run gpu-check:collect -- OUT [name]    # name: e.g. h200 → bench/results/train.h200.json
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [out, name = "gpu"] = process.argv.slice(2);
if (!out || !existsSync(out)) throw new Error("usage: gpu-check:collect -- OUT [name]");

type Row = {
  shape?: string;
  what?: string;
  batch?: number;
  latentsPerSecond?: number;
  side?: number;
  task?: string;
  imagesPerSecond?: number;
};
type Bench = { date: string; figures: { backends: Record<string, { rows?: Row[] }> } };

const readJson = <T>(file: string): T => JSON.parse(readFileSync(join(out, file), "utf8")) as T;
const baselines = (prefix: string) =>
  readdirSync(out)
    .filter((f) => f.startsWith(prefix) && f.endsWith(".json"))
    .map((f) => readJson<Record<string, unknown>>(f));
const device = existsSync(join(out, "gpu.txt"))
  ? readFileSync(join(out, "gpu.txt"), "utf8").trim()
  : "unknown";
const results = new URL("../../bench/results/", import.meta.url);

for (const bench of ["train", "models"] as const) {
  if (!existsSync(join(out, `${bench}.json`))) continue;
  const ours = readJson<Bench>(`${bench}.json`);
  const torch = baselines(bench === "train" ? "torch-train-" : "torch-dcae-");
  const record: Record<string, unknown> = { device, ...ours, baseline: torch };
  record.ratios = bench === "train" ? trainRatios(ours, torch) : dcaeRatios(ours, torch);
  const file = new URL(`${bench}.${name}.json`, results);
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`written to ${file.pathname}`);
}
// The encode pipeline carries its own comparison (the task against the bare encoder).
if (existsSync(join(out, "encode-pipeline.json"))) {
  const file = new URL(`encode-pipeline.${name}.json`, results);
  const record = { device, ...readJson<Record<string, unknown>>("encode-pipeline.json") };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`written to ${file.pathname}`);
}

/** Per paper shape: our training step's latents/s ÷ the baseline's, at the baseline's batch. */
function trainRatios(ours: Bench, torch: Record<string, unknown>[]) {
  const rows = ours.figures.backends.webgpu?.rows ?? [];
  return torch.map((t) => {
    const mine = rows.find(
      (r) => r.what === "training step" && r.shape === t.config && r.batch === t.batch,
    );
    const theirs = t.latents_per_s as number;
    return {
      shape: t.config,
      batch: t.batch,
      oursLatentsPerSecond: mine?.latentsPerSecond ?? null,
      torchLatentsPerSecond: theirs,
      ratio: mine?.latentsPerSecond ? mine.latentsPerSecond / theirs : null,
    };
  });
}

/** Per baseline shape and dtype: our DC-AE encode and decode images/s ÷ the baseline's. */
function dcaeRatios(ours: Bench, torch: Record<string, unknown>[]) {
  const rows = ours.figures.backends.webgpu?.rows ?? [];
  const mine = (task: string, t: Record<string, unknown>) =>
    rows.find((r) => r.side === t.side && r.batch === t.batch && r.task === task)?.imagesPerSecond;
  const ratio = (a: number | undefined, b: unknown) => (a ? a / (b as number) : null);
  return torch.map((t) => ({
    side: t.side,
    batch: t.batch,
    torchDtype: t.dtype,
    encodeRatio: ratio(mine("encode", t), t.encode_images_per_s),
    decodeRatio: ratio(mine("decode", t), t.decode_images_per_s),
  }));
}
