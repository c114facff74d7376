/**
 * Latency of the token download route, the edge's latency-critical path, against a plain
 * authenticated R2 GET of the same size (an image's content route) in the same run:
 * p50/p90/p99 and requests per second on loopback, under `wrangler dev` with local D1 and R2.
 * Load comes from a second process (bench/edge-latency-load.ts), each scenario bounded in time.
 * Figures go to bench/results/edge-latency.json.
 *
 *   npm run bench:edge-latency                 # 3 s per scenario
 *   npm run bench:edge-latency -- --seconds 1  # a quick run
 */
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { AwsClient } from "aws4fetch";
import { crc32 } from "../shared/src/format/crc32.ts";
import { writeTokenStream } from "../shared/src/format/token-stream.ts";
import type { LeaseResponse } from "../shared/src/protocol/worker-api.ts";
import { adminPost, edgeFetch, type Json, paperTokenizer } from "./lib/edge-setup.ts";
import { writeResults } from "./lib/results.ts";
import { type DevServer, startEdge } from "./lib/wrangler-dev.ts";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "3" } } });
const SECONDS = Number(values.seconds);
const CONNECTIONS = [1, 8];

/** A PNG the edge accepts (it reads headers, not pixels) of exactly `size` bytes. */
function pngOfSize(size: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(
      Array.from(type, (c) => c.charCodeAt(0)),
      4,
    );
    out.set(data, 8);
    view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 256);
  new DataView(ihdr.buffer).setUint32(4, 256);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(size - 57)),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Tenant, keys, tokenizer, and two finished encode jobs (1 and 64 images). */
async function setUp(edge: DevServer) {
  const admin = (path: string, body: unknown) => adminPost(edge, path, body);
  const tenant = await admin("/v1/admin/tenants", { name: "bench" });
  const apiKey = (await admin(`/v1/admin/tenants/${tenant.id}/keys`, { kind: "api" }))
    .key as string;
  const workerKey = (await admin(`/v1/admin/tenants/${tenant.id}/keys`, { kind: "worker" }))
    .key as string;

  // One shared codebook group is enough here: only the token layout matters to downloads.
  const { manifest, files } = await paperTokenizer(
    "bench-512x16384",
    1,
    new Float32Array(16384 * 4),
  );
  const tokenizer = (await admin("/v1/admin/tokenizers", manifest)).tokenizer as Json;
  for (const [path, bytes] of files) {
    const url = `/v1/admin/tokenizers/${tokenizer.id}/files/${path}`;
    await edgeFetch(edge, edge.adminKey, url, { method: "PUT", body: bytes });
  }

  const s3 = new AwsClient({
    accessKeyId: "revq-local",
    secretAccessKey: "revq-local-secret",
    service: "s3",
    region: "auto",
  });
  const jobs: Record<number, string> = {};
  for (const count of [1, 64]) {
    const form = new FormData();
    for (let i = 0; i < count; i++) {
      form.append("images", new Blob([pngOfSize(200)], { type: "image/png" }));
    }
    const uploaded = await edgeFetch(edge, apiKey, "/v1/images", { method: "POST", body: form });
    const { images } = (await uploaded.json()) as { images: Json[] };
    const body = {
      kind: "encode",
      tokenizer: tokenizer.id,
      inputs: { images: images.map((i) => i.id) },
    };
    const created = await edgeFetch(edge, apiKey, "/v1/jobs", {
      method: "POST",
      body: JSON.stringify(body),
    });
    const job = (await created.json()) as Json;
    const leased = await edgeFetch(edge, workerKey, "/v1/worker/lease", {
      method: "POST",
      body: "{}",
    });
    const task = ((await leased.json()) as LeaseResponse).tasks[0];
    if (task.payload.kind !== "encode") throw new Error("expected an encode task");
    const ids = Uint32Array.from({ length: count * 512 }, (_, i) => (i * 2654435761) % 16384);
    const params = {
      tokenizerHash: task.payload.tokenizer.manifestHash,
      tokensPerRecord: 512,
      codesPerGroup: 16384,
      groups: 1,
    };
    // Through the S3 door, as a GPU worker would.
    const objectUrl = `${edge.url}/cdn-cgi/local/r2/s3/revq/${task.payload.output.tokens}`;
    const put = await s3.fetch(objectUrl, { method: "PUT", body: writeTokenStream(params, ids) });
    if (!put.ok) throw new Error(`S3 PUT: ${put.status} ${await put.text()}`);
    await edgeFetch(edge, workerKey, `/v1/worker/tasks/${task.taskId}/complete`, {
      method: "POST",
      body: JSON.stringify({ leaseId: task.leaseId, result: { kind: "encode" } }),
    });
    jobs[count] = job.id;
  }
  return { apiKey, jobs };
}

async function baselineImage(edge: DevServer, apiKey: string, size: number): Promise<string> {
  const res = await edgeFetch(edge, apiKey, "/v1/images", {
    method: "POST",
    body: pngOfSize(size),
    headers: { "content-type": "image/png" },
  });
  return ((await res.json()) as { images: Json[] }).images[0].id;
}

type Scenario = { name: string; path: string; headers?: Record<string, string>; status?: number };

function load(edge: DevServer, apiKey: string, scenario: Scenario, connections: number) {
  const spec = {
    url: `${edge.url}${scenario.path}`,
    headers: { authorization: `Bearer ${apiKey}`, ...scenario.headers },
    seconds: SECONDS,
    connections,
    status: scenario.status ?? 200,
  };
  const out = execFileSync(
    process.execPath,
    [new URL("./edge-latency-load.ts", import.meta.url).pathname, JSON.stringify(spec)],
    {
      encoding: "utf8",
    },
  );
  return JSON.parse(out);
}

const loadBefore = loadavg();
const edge = await startEdge();
try {
  const { apiKey, jobs } = await setUp(edge);
  const sizes: Record<number, number> = {};
  for (const count of [1, 64]) {
    const head = await edgeFetch(edge, apiKey, `/v1/jobs/${jobs[count]}/tokens`);
    sizes[count] = (await head.arrayBuffer()).byteLength;
  }
  const probe = await edgeFetch(edge, apiKey, `/v1/jobs/${jobs[64]}/tokens`);
  const etag64 = probe.headers.get("etag") ?? "";
  const stride = Number(probe.headers.get("revq-record-stride"));
  // The floor of the dev server on this machine: a route that touches nothing, and one D1 query.
  const scenarios: Scenario[] = [
    { name: "floor: unknown route (no D1, no R2)", path: "/v1/no-such-route", status: 404 },
    { name: "floor: /healthz (one D1 query)", path: "/healthz" },
  ];
  for (const count of [1, 64]) {
    scenarios.push(
      {
        name: `tokens, ${count} record(s), ${sizes[count]} B`,
        path: `/v1/jobs/${jobs[count]}/tokens`,
      },
      {
        name: `R2 baseline (image content), ${sizes[count]} B`,
        path: `/v1/images/${await baselineImage(edge, apiKey, sizes[count])}/content`,
      },
    );
  }
  scenarios.push(
    {
      name: `tokens, record 7 of 64 by Range, ${stride} B`,
      path: `/v1/jobs/${jobs[64]}/tokens`,
      headers: { range: `bytes=${64 + 7 * stride}-${64 + 8 * stride - 1}` },
      status: 206,
    },
    {
      name: "tokens, If-None-Match → 304",
      path: `/v1/jobs/${jobs[64]}/tokens`,
      headers: { "if-none-match": etag64 },
      status: 304,
    },
    { name: `tokens as JSON, 64 records`, path: `/v1/jobs/${jobs[64]}/tokens?format=json` },
  );
  const figures = [];
  for (const scenario of scenarios) {
    for (const connections of CONNECTIONS) {
      const result = load(edge, apiKey, scenario, connections);
      figures.push({ scenario: scenario.name, connections, ...result });
      console.log(
        `${scenario.name.padEnd(48)} c=${connections}  p50 ${result.ms.p50.toFixed(2)} ms  p99 ${result.ms.p99.toFixed(2)} ms  ${result.requestsPerSecond.toFixed(0)} req/s${result.failures ? `  ${result.failures} FAILED (${result.firstFailure})` : ""}`,
      );
    }
  }
  const wrangler = execFileSync(
    new URL("../node_modules/.bin/wrangler", import.meta.url).pathname,
    ["--version"],
    {
      encoding: "utf8",
    },
  ).trim();
  const file = writeResults("edge-latency", {
    wrangler,
    secondsPerScenario: SECONDS,
    // Other work on the machine skews loopback figures; these say how busy it was.
    loadAverage1m: { before: loadBefore[0], after: loadavg()[0] },
    results: figures,
  });
  console.log(`figures written to ${file}`);
} finally {
  edge.stop();
}
