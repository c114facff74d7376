/**
 * The local demo of the shared core (`npm run demo`), without the edge or a GPU worker:
 * a tokenizer's whole numeric path on the paper's latent shape, with files a user can open.
 *
 * Latents come from a synthetic dataset with a known per-dimension mean and std (no VAE ships yet),
 * shaped like DC-AE f32c32's 32×8×8. Output goes to .revq/demo/.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  batchStats,
  countUsage,
  emptyStats,
  initCodebookFromLatents,
  lookupCodes,
  manifestHash,
  mergeStats,
  NearestCodeIndex,
  nearestCodesExhaustive,
  normalize,
  parseManifest,
  quantLayout,
  Rng,
  readRecord,
  readTokenStreamHeader,
  recordByteRange,
  sampleCodebookSources,
  sha256Hex,
  standardDeviation,
  type TokenizerManifest,
  usagePerGroup,
  writeNpy,
  writeSafetensors,
  writeTokenJson,
  writeTokenNpy,
  writeTokenStream,
} from "../shared/src/index.ts";

const OUT = join(process.cwd(), ".revq", "demo");
const LATENT = { channels: 32, height: 8, width: 8 };
const layout = quantLayout(LATENT, 512); // 512 tokens of 4, one codebook per position
const CODES = 1024;
const TRAIN = 4000;
const ENCODE = 64;
const dims = LATENT.channels * LATENT.height * LATENT.width;

const rng = new Rng(2507);
const trueMean = Float64Array.from({ length: dims }, () => (rng.nextFloat() - 0.5) * 6);
const trueStd = Float64Array.from({ length: dims }, () => Math.exp((rng.nextFloat() - 0.5) * 4));
const sampleLatents = (n: number) =>
  Float32Array.from({ length: n * dims }, (_, i) => {
    const j = i % dims;
    return trueMean[j] + trueStd[j] * rng.nextNormal();
  });

console.log(
  "revq demo: the shared core on the paper's latent shape (no edge, no worker: npm start runs those)\n",
);

// 1. Normalisation statistics, streamed over shards as several workers would, then merged.
const train = sampleLatents(TRAIN);
let stats = emptyStats(dims);
for (let shard = 0; shard < 4; shard++) {
  const rows = TRAIN / 4;
  stats = mergeStats(
    stats,
    batchStats(train.subarray(shard * rows * dims, (shard + 1) * rows * dims), dims),
  );
}
const std = standardDeviation(stats);
const meanError = Math.max(...stats.mean.map((m, j) => Math.abs(m - trueMean[j]) / trueStd[j]));
console.log(`1. latent statistics of ${TRAIN} latents (${dims} dims), merged from 4 shards`);
console.log(
  `   max |mean error| = ${meanError.toFixed(3)} std (expected ≈ ${(3.5 / Math.sqrt(TRAIN)).toFixed(3)})`,
);

// 2. Codebook: each code starts as a random training latent's token.
const normalizedTrain = normalize(train, stats.mean, std);
const sources = sampleCodebookSources(rng, layout, CODES, TRAIN);
const codebook = initCodebookFromLatents(normalizedTrain, layout, sources, CODES);
let start = performance.now();
const index = new NearestCodeIndex(codebook);
console.log(
  `2. codebook ${layout.groups} groups × ${CODES} codes × ${layout.codeDim}, from random training latents; ` +
    `search index built in ${(performance.now() - start).toFixed(0)} ms`,
);

// 3. Encode held-out latents: normalise, nearest codes.
const heldOut = normalize(sampleLatents(ENCODE), stats.mean, std);
start = performance.now();
const { ids, squaredDistances } = index.search(heldOut, layout.tokens);
const fastMs = (performance.now() - start) / ENCODE;
start = performance.now();
const exhaustive = nearestCodesExhaustive(codebook, heldOut.subarray(0, 4 * dims), layout.tokens);
const slowMs = (performance.now() - start) / 4;
const same = exhaustive.ids.every((id, i) => id === ids[i]);
const mse = squaredDistances.reduce((a, d) => a + d, 0) / heldOut.length;
const hits = new Float64Array(layout.groups * CODES);
countUsage(hits, codebook, ids, layout.tokens);
const usedCodes =
  (usagePerGroup(hits, codebook).reduce((a, u) => a + u, 0) / layout.groups) * CODES;
console.log(
  `3. encoded ${ENCODE} held-out latents: ${fastMs.toFixed(2)} ms/image ` +
    `(exhaustive search ${slowMs.toFixed(1)} ms/image, ${same ? "same ids" : "DIFFERENT ids"})`,
);
console.log(
  `   quantization MSE ${mse.toFixed(4)} (normalised units; 1.0 = knowing nothing), ` +
    `${usedCodes.toFixed(1)} distinct codes hit per group by these ${ENCODE} images`,
);
const roundTrip = lookupCodes(codebook, ids, layout.tokens);
const lookupMse = roundTrip.reduce((a, v, i) => a + (v - heldOut[i]) ** 2, 0) / heldOut.length;
console.log(`   decoding by codebook lookup gives the same MSE: ${lookupMse.toFixed(4)}`);

// 4. The tokenizer on disk: manifest + safetensors, identified by the manifest's hash.
mkdirSync(join(OUT, "tokenizer"), { recursive: true });
const statsFile = writeSafetensors({
  mean: { dtype: "F32", shape: [dims], data: Float32Array.from(stats.mean) },
  std: { dtype: "F32", shape: [dims], data: Float32Array.from(std) },
});
const codebookFile = writeSafetensors({
  codebook: { dtype: "F32", shape: [layout.groups, CODES, layout.codeDim], data: codebook.data },
});
writeFileSync(join(OUT, "tokenizer", "stats.safetensors"), statsFile);
writeFileSync(join(OUT, "tokenizer", "codebook.safetensors"), codebookFile);
const manifest: TokenizerManifest = parseManifest({
  schema: "revq.tokenizer/v1",
  name: "demo-synthetic-512x1024",
  description: "Demo tokenizer on synthetic latents (no rectifier, untrained codebook).",
  vae: {
    name: "synthetic",
    kind: "dcae",
    inputResolution: { height: 256, width: 256 },
    latentShape: LATENT,
  },
  quantizer: {
    tokens: layout.tokens,
    groups: layout.groups,
    codeDim: layout.codeDim,
    codesPerGroup: CODES,
  },
  rectifier: { architecture: "identity" },
  files: {
    stats: {
      path: "stats.safetensors",
      bytes: statsFile.length,
      sha256: await sha256Hex(statsFile),
      tensors: ["mean", "std"],
    },
    codebook: {
      path: "codebook.safetensors",
      bytes: codebookFile.length,
      sha256: await sha256Hex(codebookFile),
      tensors: ["codebook"],
    },
  },
});
const tokenizerHash = await manifestHash(manifest);
writeFileSync(join(OUT, "tokenizer", "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(
  `4. tokenizer written to .revq/demo/tokenizer/ — identity (manifest sha256) ${tokenizerHash.slice(0, 16)}…`,
);

// 5. Tokens as a stream, .npy and JSON; one record read alone as an HTTP Range request would.
const params = {
  tokenizerHash,
  tokensPerRecord: layout.tokens,
  codesPerGroup: CODES,
  groups: layout.groups,
};
const stream = writeTokenStream(params, ids);
writeFileSync(join(OUT, "tokens.rvqt"), stream);
writeFileSync(join(OUT, "tokens.npy"), writeTokenNpy(params, ids));
writeFileSync(join(OUT, "tokens.json"), JSON.stringify(writeTokenJson(params, ids)));
writeFileSync(
  join(OUT, "latents.npy"),
  writeNpy(heldOut, [ENCODE, LATENT.channels, LATENT.height, LATENT.width]),
);
const header = readTokenStreamHeader(stream.subarray(0, 64));
const range = recordByteRange(header, 17);
const record17 = readRecord(header, stream.slice(range.offset, range.offset + range.length), 17);
const packedBytes = (ENCODE * layout.tokens * header.bitsPerToken) / 8;
const overhead = ((stream.length - packedBytes) / packedBytes) * 100;
console.log(
  `5. token stream: ${stream.length} bytes for ${ENCODE} images × ${layout.tokens} tokens × ` +
    `${header.bitsPerToken} bits (${overhead.toFixed(2)}% container overhead; ` +
    `${((dims * 4 * ENCODE) / stream.length).toFixed(0)}× smaller than float32 latents)`,
);
console.log(
  `   record 17 alone (Range: bytes=${range.offset}-${range.offset + range.length - 1}): ` +
    `${record17.every((id, t) => id === ids[17 * layout.tokens + t]) ? "matches" : "DIFFERS"}`,
);
console.log(
  "   files: .revq/demo/tokens.rvqt, tokens.npy (np.load → int32 (64, 512)), tokens.json, latents.npy",
);
console.log("\nSpec of the token stream: docs/token-stream.md. Benchmarks: npm run bench:nearest.");
