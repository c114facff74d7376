/**
 * Nearest-code search throughput for the paper's shapes: the k-d tree index against the
 * straightforward triple loop (every code of every group), in the same run on the same data.
 *
 *   npm run bench:nearest            # both paper shapes
 *   npm run bench:nearest -- --quick # a smaller codebook, for a smoke run
 */
import {
  createCodebook,
  NearestCodeIndex,
  nearestCodesExhaustive,
  Rng,
} from "../shared/src/quant/index.ts";
import { timePerCall, writeResults } from "./lib/results.ts";

type Shape = { name: string; tokens: number; codes: number; dim: number; batch: number };

const quick = process.argv.includes("--quick");
const shapes: Shape[] = quick
  ? [{ name: "512 tokens × 1024 codes × 4", tokens: 512, codes: 1024, dim: 4, batch: 8 }]
  : [
      {
        name: "512 tokens × 16384 codes × 4 (rFID 1.06 config)",
        tokens: 512,
        codes: 16384,
        dim: 4,
        batch: 16,
      },
      {
        name: "256 tokens × 65536 codes × 8 (rFID 2.57 config)",
        tokens: 256,
        codes: 65536,
        dim: 8,
        batch: 8,
      },
    ];

const rows = shapes.map(measure);
console.table(
  rows.map((r) => ({
    shape: r.shape,
    "index build s": r.indexBuildSeconds.toFixed(2),
    "baseline img/s": r.baseline.imagesPerSecond.toFixed(1),
    "index img/s": r.index.imagesPerSecond.toFixed(1),
    "index ms/img": r.index.msPerImage.toFixed(2),
    speedup: `${r.speedup.toFixed(1)}×`,
  })),
);
console.log(`wrote ${writeResults(quick ? "nearest-quick" : "nearest", rows)}`);

function measure(shape: Shape) {
  const rng = new Rng(2507_10547);
  // Codes and latents as the method sees them: normalised latents are ~N(0, 1) per dimension,
  // and codes are initialised from such latents.
  const codebook = createCodebook(shape.tokens, shape.codes, shape.dim);
  for (let i = 0; i < codebook.data.length; i++) codebook.data[i] = rng.nextNormal();
  const perImage = shape.tokens * shape.dim;
  const batch = Float32Array.from({ length: shape.batch * perImage }, () => rng.nextNormal());

  const buildStart = performance.now();
  const index = new NearestCodeIndex(codebook);
  const indexBuildSeconds = (performance.now() - buildStart) / 1000;

  const fast = timePerCall(() => index.search(batch, shape.tokens), 3000);
  const one = batch.subarray(0, perImage);
  const slow = timePerCall(() => nearestCodesExhaustive(codebook, one, shape.tokens), 3000);

  const agree = index
    .search(one, shape.tokens)
    .ids.every((id, i) => id === nearestCodesExhaustive(codebook, one, shape.tokens).ids[i]);
  if (!agree) throw new Error(`${shape.name}: the index and the baseline disagree`);

  const indexMs = fast.msPerCall / shape.batch;
  return {
    shape: shape.name,
    groups: shape.tokens,
    codes: shape.codes,
    dim: shape.dim,
    batch: shape.batch,
    indexBuildSeconds,
    baseline: {
      msPerImage: slow.msPerCall,
      imagesPerSecond: 1000 / slow.msPerCall,
      calls: slow.calls,
    },
    index: { msPerImage: indexMs, imagesPerSecond: 1000 / indexMs, calls: fast.calls },
    speedup: slow.msPerCall / indexMs,
  };
}
