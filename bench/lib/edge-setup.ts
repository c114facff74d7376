/** What the edge benchmarks share: authenticated calls to a dev server, and a paper-shaped tokenizer. */
import { writeSafetensors } from "../../shared/src/format/safetensors.ts";
import {
  MANIFEST_SCHEMA_VERSION,
  type TokenizerManifest,
} from "../../shared/src/protocol/manifest.ts";
import { sha256Hex } from "../../shared/src/protocol/sha256.ts";
import type { DevServer } from "./wrangler-dev.ts";

export type Json = Record<string, unknown> & { id: string };

/** A request with a bearer key; a string body is sent as JSON. Throws on any non-2xx answer. */
export async function edgeFetch(
  edge: DevServer,
  key: string,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${key}`);
  if (typeof init.body === "string") headers.set("content-type", "application/json");
  const res = await fetch(`${edge.url}${path}`, { ...init, headers });
  if (!res.ok)
    throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

/** POST to the admin API; the answer as JSON. */
export async function adminPost(edge: DevServer, path: string, body: unknown): Promise<Json> {
  const res = await edgeFetch(edge, edge.adminKey, path, {
    method: "POST",
    body: JSON.stringify(body),
  });
  return (await res.json()) as Json;
}

/**
 * A tokenizer with the paper's layout (latent 32×8×8 → 512 tokens of 4, 16384 codes: 14 bits)
 * and the given (groups, 16384, 4) codebook; identity rectifier, unit statistics.
 */
export async function paperTokenizer(name: string, groups: number, codebook: Float32Array) {
  const codebookFile = writeSafetensors({
    codebook: { dtype: "F32", shape: [groups, 16384, 4], data: codebook },
  });
  const stats = writeSafetensors({
    mean: { dtype: "F32", shape: [2048], data: new Float32Array(2048) },
    std: { dtype: "F32", shape: [2048], data: new Float32Array(2048).fill(1) },
  });
  const ref = async (path: string, bytes: Uint8Array) => ({
    path,
    bytes: bytes.length,
    sha256: await sha256Hex(bytes),
  });
  const manifest: TokenizerManifest = {
    schema: MANIFEST_SCHEMA_VERSION,
    name,
    vae: {
      name: "dc-ae-f32c32",
      kind: "dcae",
      inputResolution: { height: 256, width: 256 },
      latentShape: { channels: 32, height: 8, width: 8 },
    },
    quantizer: { tokens: 512, groups, codeDim: 4, codesPerGroup: 16384 },
    rectifier: { architecture: "identity" },
    files: {
      stats: await ref("stats.safetensors", stats),
      codebook: await ref("codebook.safetensors", codebookFile),
    },
  };
  return {
    manifest,
    files: new Map([
      ["stats.safetensors", stats],
      ["codebook.safetensors", codebookFile],
    ]),
  };
}
