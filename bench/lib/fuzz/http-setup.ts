/**
 * What the HTTP fuzz needs on the edge before it starts: a ready tokenizer (the paper's layout,
 * one codebook group, so its files are small), and tenants, each with an api key, a worker key,
 * an uploaded image, an upload dataset, and encode tasks its worker holds leases on, so that
 * mutated bodies can reach past "not found" into the parsers and checks behind them.
 */
import { Rng } from "../../../shared/src/quant/rng.ts";
import { paperTokenizer } from "../edge-setup.ts";

export type Edge = { url: string; adminKey: string };

export type Lease = { taskId: string; leaseId: string };

export type FuzzTenant = {
  apiKey: string;
  workerKey: string;
  imageId: string;
  datasetId: string;
  jobId: string;
  leases: Lease[];
};

export type FuzzWorld = { tokenizerId: string; manifestHash: string; tenants: FuzzTenant[] };

/** A call that must work: setup is not under test. */
async function call<T>(
  edge: Edge,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<T> {
  const res = await fetch(`${edge.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": contentType },
    body: body instanceof Uint8Array ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`fuzz setup: ${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

async function readyTokenizer(edge: Edge) {
  const rng = new Rng(15);
  const codebook = Float32Array.from({ length: 16384 * 4 }, () => rng.nextFloat() * 2 - 1);
  const { manifest, files } = await paperTokenizer("fuzz-512x16384", 1, codebook);
  type Registered = { tokenizer: { id: string; manifestHash: string } };
  const { tokenizer } = await call<Registered>(
    edge,
    edge.adminKey,
    "POST",
    "/v1/admin/tokenizers",
    manifest,
  );
  for (const [path, bytes] of files) {
    await call(
      edge,
      edge.adminKey,
      "PUT",
      `/v1/admin/tokenizers/${tokenizer.id}/files/${path}`,
      bytes,
      "application/octet-stream",
    );
  }
  return tokenizer;
}

async function tenant(
  edge: Edge,
  name: string,
  tokenizerId: string,
  image: Uint8Array,
): Promise<FuzzTenant> {
  const admin = <T>(path: string, body: unknown) =>
    call<T>(edge, edge.adminKey, "POST", path, body);
  const { id } = await admin<{ id: string }>("/v1/admin/tenants", { name });
  const mint = (kind: string) =>
    admin<{ key: string }>(`/v1/admin/tenants/${id}/keys`, { kind, name: `${name}-${kind}` });
  const [{ key: apiKey }, { key: workerKey }] = await Promise.all([mint("api"), mint("worker")]);
  const uploaded = await call<{ images: { id: string }[] }>(
    edge,
    apiKey,
    "POST",
    "/v1/images",
    image,
    "image/png",
  );
  const imageId = uploaded.images[0].id;
  const dataset = await call<{ id: string }>(edge, apiKey, "POST", "/v1/datasets", { name });
  const encode = { kind: "encode", tokenizer: tokenizerId, inputs: { images: [imageId] } };
  const jobs = [];
  for (let i = 0; i < 3; i++)
    jobs.push(await call<{ id: string }>(edge, apiKey, "POST", "/v1/jobs", encode));
  const leased = await call<{ tasks: Lease[] }>(edge, workerKey, "POST", "/v1/worker/lease", {
    kinds: ["encode"],
    max: 3,
  });
  return {
    apiKey,
    workerKey,
    imageId,
    datasetId: dataset.id,
    jobId: jobs[0].id,
    leases: leased.tasks.map(({ taskId, leaseId }) => ({ taskId, leaseId })),
  };
}

export async function setUpWorld(
  edge: Edge,
  tenants: number,
  image: Uint8Array,
): Promise<FuzzWorld> {
  const tokenizer = await readyTokenizer(edge);
  const made: FuzzTenant[] = [];
  for (let i = 0; i < tenants; i++) made.push(await tenant(edge, `fuzz-${i}`, tokenizer.id, image));
  return { tokenizerId: tokenizer.id, manifestHash: tokenizer.manifestHash, tenants: made };
}
