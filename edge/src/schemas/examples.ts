/**
 * The examples of the OpenAPI document, as one story: a tenant uploads two images, encodes them
 * with the default tokenizer, downloads the tokens and hears of it by webhook; a GPU worker leases
 * the task and finishes it. Told once, so that ids, hashes, sizes and times agree across
 * operations. Each value is checked against the schema it shows (`satisfies` here, the routes'
 * `json(schema, example)`, and tests/edge/openapi.test.ts, which parses every example).
 */
import type { z } from "@hono/zod-openapi";
import {
  bucketKeys,
  type Dataset,
  type GrantedObject,
  type Image,
  type Job,
  type JobCreate,
  type LeasedTask,
  type ObjectRequest,
  type Tokenizer,
  type TokenizerManifest,
  type TokenJsonSchema,
  type UploadedTokens,
  type Webhook,
  type WebhookDelivery,
} from "@revq/shared";

/** A time of the story's day. */
export const at = (time: string) => `2026-12-01T${time}.000Z`;

export const ids = {
  tenant: "ten_01m8d0fxvcpfrrd0dgccvp9czy",
  key: "key_01m8d0fxvcpfrrd0dgccvp9czy",
  image: "img_01m8d0fxvcpfrrd0dgccvp9czy",
  image2: "img_01m8d0fy2k7w3q9zr5xh4tbn6e",
  dataset: "dst_01m8d0fxvcpfrrd0dgccvp9czy",
  tokenizer: "tok_01m8d0fxvcpfrrd0dgccvp9czy",
  job: "job_01m8d0fxvcpfrrd0dgccvp9czy",
  task: "tsk_01m8d0fxvcpfrrd0dgccvp9czy",
  tokens: "tks_01m8d0fxvcpfrrd0dgccvp9czy",
  webhook: "whk_01m8d0fxvcpfrrd0dgccvp9czy",
  delivery: "dlv_01m8d0fxvcpfrrd0dgccvp9czy",
  lease: "lse_41665b1031e8422db5487527e3eecc3a",
};

/** The default tokenizer's manifest (models/default-tokenizer), without its training figures. */
export const manifest = {
  schema: "revq.tokenizer/v1",
  name: "revq-default-tokenizer",
  description: "The tokenizer revq ships by default: ReVQ on the repository's default VAE.",
  vae: {
    name: "revq-default-vae",
    kind: "small-conv",
    inputResolution: { height: 64, width: 64 },
    latentShape: { channels: 8, height: 16, width: 16 },
    config: { channels: [48, 96], decoderLayers: [1, 3], encoderLayers: [1, 2], latentChannels: 8 },
    weights: {
      path: "vae.safetensors",
      bytes: 4464984,
      sha256: "cca3fa396aa27294c60285e15653e594c16e9eae4c7ecce90d77e160f971b67b",
    },
  },
  quantizer: { tokens: 512, groups: 1, codeDim: 4, codesPerGroup: 4096 },
  rectifier: {
    architecture: "dcae-decoder-stage",
    channels: 16,
    blocks: 1,
    attentionHeadDim: 16,
    qkvMultiscales: [5],
    norm: "rms_norm",
    act: "silu",
  },
  files: {
    stats: {
      path: "stats.safetensors",
      bytes: 16520,
      sha256: "25b293e7ab911fa7ca3833be86326ffa1b1153c2ce1f46fca635677a81180a1e",
      tensors: ["mean", "std"],
    },
    codebook: {
      path: "codebook.safetensors",
      bytes: 65616,
      sha256: "5d48c5c1bd88ec8115222a6cf059c5712cffbfbbd5d914cb23672b0bdf7e3cbd",
      tensors: ["codebook"],
    },
    rectifier: {
      path: "rectifier.safetensors",
      bytes: 42584,
      sha256: "4639d0fcdd9b9bc9c7797e466332525a628f7c6b9ddaf45f3852702c5b3c52e6",
    },
  },
} satisfies z.input<typeof TokenizerManifest>;

/** The manifest's SHA-256, the tokenizer's identity, and the tokenizer it registered. */
export const manifestHash = "a4c7019009593d043a9fe395bed9bd25dccf2d85c17e28d1022dba4d0ab5f563";
const { stats, codebook, rectifier } = manifest.files;
const files = [codebook, rectifier, stats, manifest.vae.weights].map(({ path, bytes, sha256 }) => ({
  path,
  bytes,
  sha256,
}));
export const tokenizer = {
  id: ids.tokenizer,
  name: manifest.name,
  manifestHash,
  owner: "public",
  status: "ready",
  quantizer: manifest.quantizer,
  files,
  createdAt: at("08:00:00"),
  readyAt: at("08:00:02"),
} satisfies z.input<typeof Tokenizer>;
const tokenizerRef = { id: ids.tokenizer, manifestHash };

export const image = {
  id: ids.image,
  format: "png",
  mediaType: "image/png",
  width: 64,
  height: 64,
  bytes: 9811,
  sha256: "4ae19a52d0a202d6dc23ec061301ca36757cc71703b54a2a7daf3d44396b5821",
  createdAt: at("09:58:00"),
} satisfies z.input<typeof Image>;
export const images = [
  image,
  {
    ...image,
    id: ids.image2,
    format: "jpeg",
    mediaType: "image/jpeg",
    bytes: 2731,
    sha256: "8270630888ba6ca9bbef5c2a469f7548d48eb2e861f45529adc6d9f50b92f8ee",
  },
] satisfies z.input<typeof Image>[];
const imageIds = images.map((i) => i.id);

export const dataset = {
  id: ids.dataset,
  name: "cat photos",
  source: "upload",
  prefix: null,
  imageCount: images.length,
  bytes: images.reduce((sum, i) => sum + i.bytes, 0),
  createdAt: at("09:59:00"),
  updatedAt: at("09:59:30"),
} satisfies z.input<typeof Dataset>;

/**
 * The encode job's tokens: 2 records of 512 ids of 12 bits, each record 768 bytes and a 4-byte
 * CRC after the 64-byte header (docs/token-stream.md).
 */
export const tokenStream = {
  recordCount: 2,
  recordStride: 772,
  bytes: 64 + 2 * 772,
  etag: "9b8aa37323ddd08bd3ff53614124c328",
};

export const webhookUrl = "https://example.com/hooks/revq";

/** The encode job of the two images, as it is once it succeeded. */
export const job = {
  id: ids.job,
  kind: "encode",
  status: "succeeded",
  tokenizer: tokenizerRef,
  inputs: { images: imageIds },
  webhookUrl,
  progress: { done: 2, total: 2, stage: "encode" },
  attempts: 1,
  result: {
    tokens: {
      bytes: tokenStream.bytes,
      recordCount: tokenStream.recordCount,
      tokensPerRecord: 512,
      codesPerGroup: 4096,
      groups: 1,
      bitsPerToken: 12,
      tokenizerHash: manifestHash,
      etag: tokenStream.etag,
    },
  },
  error: null,
  createdAt: at("10:00:00"),
  updatedAt: at("10:00:04"),
  finishedAt: at("10:00:04"),
} satisfies z.input<typeof Job>;

/** The same job as it was created: queued. */
export const queuedJob = {
  ...job,
  status: "queued",
  progress: null,
  attempts: 0,
  result: null,
  updatedAt: job.createdAt,
  finishedAt: null,
} satisfies z.input<typeof Job>;
/** Signs the deliveries to the job's webhookUrl; only its creation's answer shows it. */
export const webhookSecret = "whsec_PYogkDhKvhqYEUsWaZmRK5qSKFc3fFlLhFy1Ab74PDI=";

export const jobCreate = {
  kind: "encode",
  tokenizer: ids.tokenizer,
  inputs: { images: imageIds },
  webhookUrl,
} satisfies z.input<typeof JobCreate>;

/** The job's tokens as the JSON token document: ids made up, every one below K = 4096. */
export const tokenDocument = {
  format: "revq-tokens",
  version: 1,
  tokenizer: manifestHash,
  tokensPerRecord: 512,
  codesPerGroup: 4096,
  groups: 1,
  records: [1, 2].map((r) => Array.from({ length: 512 }, (_, t) => (r * 977 + t * 1553) % 4096)),
} satisfies z.input<typeof TokenJsonSchema>;

export const uploadedTokens = {
  id: ids.tokens,
  tokenizer: tokenizerRef,
  recordCount: tokenStream.recordCount,
  tokensPerRecord: 512,
  bytes: tokenStream.bytes,
  createdAt: at("10:05:00"),
} satisfies z.input<typeof UploadedTokens>;

export const webhook = {
  id: ids.webhook,
  url: webhookUrl,
  events: ["job.succeeded", "job.failed"],
  createdAt: at("09:00:00"),
} satisfies z.input<typeof Webhook>;

export const delivery = {
  id: ids.delivery,
  endpointId: ids.webhook,
  jobId: ids.job,
  url: webhookUrl,
  messageId: `msg_${ids.job.slice(4)}_succeeded`,
  eventType: "job.succeeded",
  status: "succeeded",
  nextAttemptAt: null,
  createdAt: at("10:00:04"),
  attempts: [{ attempt: 1, statusCode: 200, error: null, durationMs: 87, at: at("10:00:05") }],
} satisfies z.input<typeof WebhookDelivery>;

const tokensKey = bucketKeys.jobTokens(ids.tenant, ids.job);
const tokensSha256 = "edacb40ca551d3bebde69e07345946a8078a4217e1f7453a56fe5a03613b6f32";
/** A presigned URL of the bucket's S3 door, as the edge grants them. */
const presigned = (key: string) =>
  `https://revq.example.r2.cloudflarestorage.com/revq/${key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=429bc3333d2b25905333a28f259126cc3e4a190653df84cd1d57a81daca64a14`;

export const leasedTask = {
  taskId: ids.task,
  jobId: ids.job,
  kind: "encode",
  attempt: 1,
  maxAttempts: 3,
  leaseId: ids.lease,
  leaseExpiresAt: at("10:01:01"),
  payload: {
    kind: "encode",
    tokenizer: {
      ...tokenizerRef,
      manifestKey: bucketKeys.tokenizerManifest(manifestHash),
      filesPrefix: bucketKeys.tokenizerFile(manifestHash, ""),
    },
    images: images.map((i) => ({
      imageId: i.id,
      bucketKey: bucketKeys.image(ids.tenant, i.id),
      format: i.format,
      width: i.width,
      height: i.height,
    })),
    output: { tokens: tokensKey },
  },
  objects: images.map((i) => ({
    method: "GET",
    key: bucketKeys.image(ids.tenant, i.id),
    url: presigned(bucketKeys.image(ids.tenant, i.id)),
    headers: {},
    expiresAt: at("10:15:01"),
  })),
} satisfies z.input<typeof LeasedTask>;

/** The worker's grant to write the tokens: the URL is signed for their checksum. */
export const tokensGrant: {
  request: z.input<typeof ObjectRequest>;
  granted: z.input<typeof GrantedObject>;
} = {
  request: { method: "PUT", key: tokensKey, sha256: tokensSha256 },
  granted: {
    method: "PUT",
    key: tokensKey,
    url: presigned(tokensKey),
    headers: { "x-amz-checksum-sha256": "7ay0DKVR07695p4HNFlGqAeKQhfh90U6Vv5aA2E7bzI=" },
    expiresAt: at("10:15:03"),
  },
};
