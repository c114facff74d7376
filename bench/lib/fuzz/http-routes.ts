/**
 * The request bodies the HTTP fuzz mutates, per route: valid ones made by the real writers
 * (token streams and token JSON, sharp's images, modern-tar's archives, the wire protocol's JSON),
 * then byte mutations of the body, JSON value mutations, mutated parts inside a valid multipart
 * form, and now and then a wrong content type.
 */
import { writeNpy } from "../../../shared/src/format/npy.ts";
import { writeTokenJson } from "../../../shared/src/format/token-json.ts";
import {
  TOKEN_STREAM_MEDIA_TYPE,
  type TokenStreamParams,
  writeTokenStream,
} from "../../../shared/src/format/token-stream.ts";
import type { Rng } from "../../../shared/src/quant/rng.ts";
import type { FuzzTenant, FuzzWorld } from "./http-setup.ts";
import { mutateBytes, mutateJson, mutateTokenStream } from "./mutate.ts";
import { idsFor } from "./seeds.ts";

export type FuzzRequest = {
  method: "POST";
  path: string;
  contentType: string;
  body: Uint8Array;
};

export type RouteCase = {
  name: string;
  /** The key the route takes. */
  key: "api" | "worker";
  make: (rng: Rng, tenant: FuzzTenant) => FuzzRequest;
};

/** Valid inputs the routes are fuzzed from. */
export type HttpSeeds = { images: Uint8Array[]; tars: Uint8Array[] };

const UTF8 = new TextEncoder();
const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.nextInt(items.length)];

const WRONG_TYPES = [
  "",
  "text/plain",
  "application/octet-stream",
  "application/json; charset=utf-16",
  "multipart/form-data",
  "multipart/form-data; boundary=",
  "image/gif",
  TOKEN_STREAM_MEDIA_TYPE,
];

/** The declared type, or one time in twenty a wrong one. */
function contentType(rng: Rng, right: string): string {
  return rng.nextFloat() < 0.05 ? pick(rng, WRONG_TYPES) : right;
}

/** Now and then the valid body itself, so that every route shows what it answers to one. */
const VALID_SHARE = 0.05;

/** A body: a valid one, or a byte mutation of one. */
function bytesBody(rng: Rng, valid: Uint8Array[]): Uint8Array {
  return rng.nextFloat() < VALID_SHARE ? pick(rng, valid) : mutateBytes(rng, valid);
}

/** A JSON body: valid, or 70% value mutations (still JSON), 30% mutations of its text (often not). */
function jsonBody(rng: Rng, valid: unknown[]): Uint8Array {
  const texts = valid.map((v) => UTF8.encode(JSON.stringify(v)));
  if (rng.nextFloat() < VALID_SHARE) return pick(rng, texts);
  if (rng.nextFloat() < 0.3) return mutateBytes(rng, texts);
  return UTF8.encode(JSON.stringify(mutateJson(rng, valid)) ?? "null");
}

const BOUNDARY = "revq-fuzz-boundary";
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

function multipart(parts: { name: string; type: string; bytes: Uint8Array }[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  parts.forEach((part, i) => {
    chunks.push(
      UTF8.encode(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"; filename="f${i}"\r\nContent-Type: ${part.type}\r\n\r\n`,
      ),
      part.bytes,
      UTF8.encode("\r\n"),
    );
  });
  chunks.push(UTF8.encode(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

const IMAGE_TYPES = [
  "image/png",
  "image/jpeg",
  "image/jpeg",
  "image/webp",
  "image/webp",
  "image/webp",
];

/** A form of one to three image parts: mutated inside a valid form, or the form's bytes mutated. */
function multipartBody(rng: Rng, images: Uint8Array[]): Uint8Array {
  const parts = Array.from({ length: 1 + rng.nextInt(3) }, () => {
    const i = rng.nextInt(images.length);
    return { name: "images", type: IMAGE_TYPES[i], bytes: images[i] };
  });
  const r = rng.nextFloat();
  if (r < 0.4) {
    const part = pick(rng, parts);
    part.bytes = mutateBytes(rng, images);
    if (rng.nextFloat() < 0.2) part.name = pick(rng, ["image", "", "images[]", "images\u0000"]);
    return multipart(parts);
  }
  if (r < 0.5) return multipart(parts);
  return mutateBytes(rng, [multipart(parts)]);
}

/**
 * A lease body with waitSeconds at most 1: a long poll is the route working as meant, and up to
 * 60 s of it per request would only make the run long.
 */
function shortPoll(body: Uint8Array): Uint8Array {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return body;
  }
  const wait = (value as { waitSeconds?: unknown } | null)?.waitSeconds;
  if (typeof wait !== "number" || wait <= 1) return body;
  return UTF8.encode(JSON.stringify({ ...(value as object), waitSeconds: 1 }));
}

type Part<T> = (rng: Rng, tenant: FuzzTenant) => T;

/** A POST with an API key: its path, the media type its body is meant to have, and its body. */
function apiPost(
  name: string,
  path: Part<string>,
  mediaType: string,
  body: Part<Uint8Array>,
): RouteCase {
  return {
    key: "api",
    name,
    make: (rng, tenant) => ({
      method: "POST",
      path: path(rng, tenant),
      contentType: contentType(rng, mediaType),
      body: body(rng, tenant),
    }),
  };
}

export function routeCases(world: FuzzWorld, seeds: HttpSeeds): RouteCase[] {
  const params: TokenStreamParams = {
    tokenizerHash: world.manifestHash,
    tokensPerRecord: 512,
    codesPerGroup: 16384,
    groups: 1,
  };
  const streams = [1, 2, 4].map((n) => writeTokenStream(params, idsFor(params, n)));
  const tokenJsons = [1, 2].map((n) => writeTokenJson(params, idsFor(params, n)));
  const npys = [1, 3].map((n) => writeNpy(Int32Array.from(idsFor(params, n)), [n, 512]));
  const queries = ["", "?output=ids", "?output=ids&format=npy", "?format=safetensors"];
  const uploadPath = (rng: Rng) =>
    rng.nextFloat() < 0.9 ? `/v1/tokens?tokenizer=${world.manifestHash}` : "/v1/tokens";
  const decodePath = (rng: Rng) =>
    `/v1/decode${rng.nextFloat() < 0.05 ? "?output=x&format=" : pick(rng, queries)}`;
  const task = (rng: Rng, tenant: FuzzTenant) =>
    tenant.leases.length > 0 && rng.nextFloat() < 0.95
      ? pick(rng, tenant.leases)
      : { taskId: "tsk_00000000000000000000000000", leaseId: "lease-unknown" };
  const workerCase = (
    name: string,
    valid: (lease: { leaseId: string }) => unknown[],
  ): RouteCase => ({
    name: `POST /v1/worker/tasks/{id}/${name}`,
    key: "worker",
    make: (rng, tenant) => {
      const lease = task(rng, tenant);
      return {
        method: "POST",
        path: `/v1/worker/tasks/${lease.taskId}/${name}`,
        contentType: contentType(rng, "application/json"),
        body: jsonBody(rng, valid(lease)),
      };
    },
  });
  const streamBody = (rng: Rng) =>
    rng.nextFloat() < VALID_SHARE ? pick(rng, streams) : mutateTokenStream(rng, streams);
  const datasetImages = (_rng: Rng, tenant: FuzzTenant) =>
    `/v1/datasets/${tenant.datasetId}/images`;
  return [
    apiPost("POST /v1/decode (token stream)", decodePath, TOKEN_STREAM_MEDIA_TYPE, streamBody),
    apiPost("POST /v1/decode (JSON)", decodePath, "application/json", (rng, tenant) =>
      jsonBody(rng, [...tokenJsons, { job: tenant.jobId }]),
    ),
    apiPost("POST /v1/tokens (token stream)", uploadPath, TOKEN_STREAM_MEDIA_TYPE, streamBody),
    apiPost("POST /v1/tokens (JSON)", uploadPath, "application/json", (rng) =>
      jsonBody(rng, tokenJsons),
    ),
    apiPost("POST /v1/tokens (.npy)", uploadPath, "application/x-npy", (rng) =>
      bytesBody(rng, npys),
    ),
    {
      key: "api",
      name: "POST /v1/images (raw)",
      make: (rng) => {
        const i = rng.nextInt(seeds.images.length);
        return {
          method: "POST",
          path: "/v1/images",
          contentType: contentType(rng, IMAGE_TYPES[i]),
          body: bytesBody(rng, [seeds.images[i]]),
        };
      },
    },
    apiPost(
      "POST /v1/images (multipart)",
      () => "/v1/images",
      MULTIPART,
      (rng) => multipartBody(rng, seeds.images),
    ),
    apiPost(
      "POST /v1/jobs",
      () => "/v1/jobs",
      "application/json",
      (rng, tenant) =>
        jsonBody(rng, [
          { kind: "encode", tokenizer: world.tokenizerId, inputs: { images: [tenant.imageId] } },
          { kind: "reconstruct", tokenizer: world.tokenizerId, inputs: { job: tenant.jobId } },
          {
            kind: "train",
            baseTokenizer: world.tokenizerId,
            inputs: { dataset: tenant.datasetId },
            parameters: { epochs: 1, batchSize: 8 },
            webhookUrl: "https://example.com/hook",
          },
        ]),
    ),
    apiPost("POST /v1/datasets/{id}/images (tar)", datasetImages, "application/x-tar", (rng) =>
      bytesBody(rng, seeds.tars),
    ),
    apiPost("POST /v1/datasets/{id}/images (multipart)", datasetImages, MULTIPART, (rng) =>
      multipartBody(rng, seeds.images),
    ),
    apiPost(
      "POST /v1/datasets/{id}/images (JSON ids)",
      datasetImages,
      "application/json",
      (rng, tenant) => jsonBody(rng, [{ imageIds: [tenant.imageId] }]),
    ),
    {
      name: "POST /v1/worker/lease",
      key: "worker",
      make: (rng) => ({
        method: "POST",
        path: "/v1/worker/lease",
        contentType: contentType(rng, "application/json"),
        body: shortPoll(
          jsonBody(rng, [{ kinds: ["encode", "train"], max: 2, waitSeconds: 0, worker: "fuzz" }]),
        ),
      }),
    },
    workerCase("heartbeat", ({ leaseId }) => [
      {
        leaseId,
        progress: { done: 1, total: 2, stage: "encode" },
        metrics: { "images/s": 3 },
        message: "m",
      },
    ]),
    workerCase("complete", ({ leaseId }) => [
      { leaseId, result: { kind: "encode" }, metrics: { images: 1 } },
      { leaseId, result: { kind: "train", manifest: { schema: "revq.tokenizer/v1" } } },
    ]),
    workerCase("fail", ({ leaseId }) => [
      { leaseId, retryable: true, error: { code: "oom", message: "out of memory" } },
    ]),
    workerCase("release", ({ leaseId }) => [{ leaseId }]),
    workerCase("objects", ({ leaseId }) => [
      {
        leaseId,
        objects: [
          { method: "GET", key: `tokenizers/${world.manifestHash}/manifest.json` },
          { method: "PUT", key: "tenants/x/jobs/y/tokens.rvqt", sha256: "0".repeat(64) },
        ],
      },
    ]),
  ];
}
