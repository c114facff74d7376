/**
 * POST /v1/decode for the paper's 512-token configuration (512 groups × 16384 codes × 4: a
 * 134 MB F32 codebook, more than a Worker's 128 MB), for 1 and for 64 images, under
 * `wrangler dev` with local R2. The codebook goes into the bucket through the S3 door, as a
 * trained tokenizer's would; every answer is checked to be exactly the codebook lookup done here.
 * Memory, per row (all its requests): the Worker's isolate as V8 counts it (committed JS heap plus
 * ArrayBuffer backing stores, what the 128 MB limit covers), sampled every 5 ms through
 * wrangler's inspector, against its size just before; and the resident set of the workerd
 * process before, at its peak (the kernel's high-water mark, reset before the row) and after.
 * That process also runs local D1 and R2, so its figure is an upper bound.
 * Figures go to bench/results/edge-decode.json.
 *
 *   npm run bench:edge-decode
 */
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { AwsClient } from "aws4fetch";
import { readNpy } from "../shared/src/format/npy.ts";
import { writeTokenStream } from "../shared/src/format/token-stream.ts";
import { bucketKeys } from "../shared/src/protocol/bucket-keys.ts";
import { createCodebook, lookupCodes } from "../shared/src/quant/codebook.ts";
import { Rng } from "../shared/src/quant/rng.ts";
import { adminPost, edgeFetch, type Json, paperTokenizer } from "./lib/edge-setup.ts";
import { IsolateHeap } from "./lib/isolate-heap.ts";
import { memoryOf, processesInGroup, resetPeak } from "./lib/process-memory.ts";
import { writeResults } from "./lib/results.ts";
import { type DevServer, startEdge } from "./lib/wrangler-dev.ts";

const T = 512;
const G = 512;
const K = 16384;
const D = 4;
const RUNS: Record<number, number> = { 1: 10, 64: 5 };

function paperCodebook(): Float32Array {
  const rng = new Rng(2507);
  const data = new Float32Array(G * K * D);
  for (let i = 0; i < data.length; i++) data[i] = rng.nextFloat() * 2 - 1;
  return data;
}

async function setUp(edge: DevServer, codebook: Float32Array) {
  const admin = (path: string, body: unknown) => adminPost(edge, path, body);
  const { manifest, files } = await paperTokenizer("bench-paper-512x16384", G, codebook);
  const codebookFile = files.get("codebook.safetensors") as Uint8Array;
  const stats = files.get("stats.safetensors") as Uint8Array;
  const registered = await admin("/v1/admin/tokenizers", manifest);
  const { id, manifestHash } = registered.tokenizer as Json & { manifestHash: string };
  // The codebook is over the Workers request-size limit: it goes in through the S3 door.
  const s3 = new AwsClient({
    accessKeyId: "revq-local",
    secretAccessKey: "revq-local-secret",
    service: "s3",
    region: "auto",
  });
  const key = bucketKeys.tokenizerFile(manifestHash, "codebook.safetensors");
  const put = await s3.fetch(`${edge.url}/cdn-cgi/local/r2/s3/revq/${key}`, {
    method: "PUT",
    body: codebookFile,
  });
  if (!put.ok) throw new Error(`S3 PUT: ${put.status} ${await put.text()}`);
  await edgeFetch(edge, edge.adminKey, `/v1/admin/tokenizers/${id}/files/stats.safetensors`, {
    method: "PUT",
    body: stats,
  });
  const ready = await admin("/v1/admin/tokenizers", manifest);
  if ((ready.tokenizer as Json).status !== "ready")
    throw new Error(`tokenizer not ready: ${JSON.stringify(ready)}`);

  const tenant = await admin("/v1/admin/tenants", { name: "bench" });
  const apiKey = (await admin(`/v1/admin/tenants/${tenant.id}/keys`, { kind: "api" }))
    .key as string;
  return { apiKey, manifestHash, codebookBytes: codebookFile.length };
}

/** One server per read budget: the default, and one read per codebook row for a single image. */
const BUDGETS = [128, 512];
const MERGE_GAP = 65536;

async function measure(maxRangeReads: number, codebook: Float32Array) {
  const edge = await startEdge({
    DECODE_MAX_RANGE_READS: String(maxRangeReads),
    DECODE_MERGE_GAP_BYTES: String(MERGE_GAP),
  });
  try {
    const { apiKey, manifestHash, codebookBytes } = await setUp(edge, codebook);
    // wrangler dev runs two: a proxy on the public port, and the runtime that runs the Worker
    // (and local D1 and R2), the one with an inspector.
    const runtime = processesInGroup(edge.pid, "workerd").filter((p) =>
      p.args.some((a) => a.startsWith("--inspector-addr")),
    );
    if (runtime.length !== 1)
      throw new Error(`expected one workerd runtime, found ${runtime.length}`);
    const [{ pid }] = runtime;
    const heap = await IsolateHeap.attach(edge.inspectorPort);
    const rng = new Rng(7);
    const rows = [];
    for (const images of [1, 64]) {
      const ids = Uint32Array.from({ length: images * T }, () => rng.nextInt(K));
      const params = {
        tokenizerHash: manifestHash,
        tokensPerRecord: T,
        codesPerGroup: K,
        groups: G,
      };
      const stream = writeTokenStream(params, ids);
      const expected = lookupCodes(createCodebook(G, K, D, codebook), ids, T);
      const times: number[] = [];
      let reads = 0;
      let bytesRead = 0;
      const isolateBefore = await heap.bytes();
      resetPeak(pid);
      const before = memoryOf(pid);
      const watching = heap.watch();
      for (let run = 0; run <= RUNS[images]; run++) {
        const started = performance.now();
        const res = await edgeFetch(edge, apiKey, "/v1/decode", {
          method: "POST",
          body: stream,
          headers: { "content-type": "application/vnd.revq.tokens" },
        });
        const body = new Uint8Array(await res.arrayBuffer());
        times.push(performance.now() - started);
        const latents = readNpy(body).data as Float32Array;
        if (
          latents.length !== expected.length ||
          latents.some((v, i) => !Object.is(v, expected[i]))
        ) {
          throw new Error(`decode of ${images} image(s) differs from the codebook lookup`);
        }
        reads = Number(res.headers.get("revq-codebook-range-reads"));
        bytesRead = Number(res.headers.get("revq-codebook-bytes-read"));
      }
      const isolatePeak = await watching.stop();
      const after = memoryOf(pid);
      const [first, ...warm] = times;
      warm.sort((a, b) => a - b);
      const row = {
        maxRangeReads,
        images,
        tokens: images * T,
        exact: true,
        firstRequestMs: first,
        warm: {
          runs: warm.length,
          p50Ms: warm[Math.floor(warm.length / 2)],
          minMs: warm[0],
          maxMs: warm[warm.length - 1],
        },
        codebookRangeReads: reads,
        codebookBytesRead: bytesRead,
        codebookBytes,
        latentsBytes: images * 2048 * 4,
        isolateMemory: {
          baselineBytes: isolateBefore,
          peakBytes: isolatePeak,
          peakIncreaseBytes: isolatePeak - isolateBefore,
        },
        workerdMemory: {
          rssBeforeBytes: before.rssBytes,
          peakBytes: after.peakBytes,
          peakIncreaseBytes: after.peakBytes - before.rssBytes,
          rssAfterBytes: after.rssBytes,
        },
      };
      rows.push(row);
      console.log(
        `budget ${maxRangeReads} reads, ${images} image(s): first ${first.toFixed(0)} ms, warm p50 ${row.warm.p50Ms.toFixed(0)} ms (min ${row.warm.minMs.toFixed(0)}, max ${row.warm.maxMs.toFixed(0)}); ${reads} range reads, ${(bytesRead / 2 ** 20).toFixed(1)} MiB read of ${(codebookBytes / 2 ** 20).toFixed(1)} MiB; isolate peak ${(isolatePeak / 2 ** 20).toFixed(1)} MiB (+${(row.isolateMemory.peakIncreaseBytes / 2 ** 20).toFixed(1)}), workerd peak +${(row.workerdMemory.peakIncreaseBytes / 2 ** 20).toFixed(1)} MiB`,
      );
    }
    heap.close();
    return rows;
  } finally {
    edge.stop();
  }
}

const codebook = paperCodebook();
const loadBefore = loadavg();
const results = [];
for (const budget of BUDGETS) results.push(...(await measure(budget, codebook)));
const wrangler = execFileSync(
  new URL("../node_modules/.bin/wrangler", import.meta.url).pathname,
  ["--version"],
  {
    encoding: "utf8",
  },
).trim();
const file = writeResults("edge-decode", {
  wrangler,
  configuration: { tokens: T, groups: G, codesPerGroup: K, codeDim: D },
  mergeGapBytes: MERGE_GAP,
  loadAverage1m: { before: loadBefore[0], after: loadavg()[0] },
  results,
});
console.log(`figures written to ${file}`);
