/**
 * The answers of the client API that the CLI reads, checked before use so that a version skew
 * between CLI and edge is an error that names the field, not an `undefined` further on. They
 * follow the edge's schemas (edge/src/schemas, served as /v1/openapi.json) but are loose:
 * fields an edge adds later are let through. The manifest and token formats come from
 * @revq/shared, the same code the edge runs.
 */
import { JOB_KINDS, JOB_STATUSES } from "@revq/shared";
import * as z from "zod";

export const Job = z.looseObject({
  id: z.string(),
  kind: z.enum(JOB_KINDS),
  status: z.enum(JOB_STATUSES),
  tokenizer: z.looseObject({ id: z.string(), manifestHash: z.string() }).nullable(),
  inputs: z.record(z.string(), z.unknown()),
  progress: z
    .looseObject({ done: z.number(), total: z.number().optional(), stage: z.string().optional() })
    .nullable(),
  attempts: z.number(),
  result: z.record(z.string(), z.unknown()).nullable(),
  error: z.looseObject({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  /** A train job's extract jobs (docs/api.md, "Train jobs, datasets and latent extraction"). */
  extractJobs: z.array(z.string()).optional(),
});
export type Job = z.infer<typeof Job>;

/** A succeeded reconstruct job's result: one PNG per record, downloadable at its url. */
export const ReconstructResult = z.looseObject({
  images: z.array(z.looseObject({ index: z.number(), bytes: z.number(), url: z.string() })),
});

export const JobList = z.looseObject({ jobs: z.array(Job), nextCursor: z.string().nullable() });

export const JobEvent = z.looseObject({
  id: z.number(),
  type: z.string(),
  data: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
});
export type JobEvent = z.infer<typeof JobEvent>;

export const EventPage = z.looseObject({ events: z.array(JobEvent), next: z.number().nullable() });

export const Tokenizer = z.looseObject({
  id: z.string(),
  name: z.string(),
  manifestHash: z.string(),
  owner: z.string(),
  status: z.string(),
  quantizer: z.looseObject({
    tokens: z.number(),
    groups: z.number(),
    codeDim: z.number(),
    codesPerGroup: z.number(),
  }),
  files: z.array(z.looseObject({ path: z.string(), bytes: z.number() })),
  createdAt: z.string(),
});
export type Tokenizer = z.infer<typeof Tokenizer>;

export const TokenizerList = z.looseObject({ tokenizers: z.array(Tokenizer) });
export const TokenizerWithManifest = Tokenizer.extend({
  manifest: z.record(z.string(), z.unknown()),
});

export const UploadedImages = z.looseObject({
  images: z.array(
    z.looseObject({ id: z.string(), format: z.string(), width: z.number(), height: z.number() }),
  ),
});

export const Dataset = z.looseObject({
  id: z.string(),
  name: z.string(),
  source: z.enum(["upload", "prefix"]),
  prefix: z.string().nullable(),
  /** Null for a prefix dataset: the edge counts its files when a train job freezes it. */
  imageCount: z.number().nullable(),
  bytes: z.number().nullable(),
  createdAt: z.string(),
});
export type Dataset = z.infer<typeof Dataset>;

export const DatasetList = z.looseObject({
  datasets: z.array(Dataset),
  nextCursor: z.string().nullable(),
});

export const DatasetImagesAdded = z.looseObject({
  added: z.number(),
  imageIds: z.array(z.string()),
  dataset: Dataset,
});
export type DatasetImagesAdded = z.infer<typeof DatasetImagesAdded>;

export const Webhook = z.looseObject({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  createdAt: z.string(),
});
export const WebhookCreated = Webhook.extend({ secret: z.string() });
export const WebhookList = z.looseObject({ webhooks: z.array(Webhook) });

export const Delivery = z.looseObject({
  id: z.string(),
  jobId: z.string().nullable(),
  url: z.string(),
  eventType: z.string(),
  status: z.string(),
  createdAt: z.string(),
  attempts: z.array(
    z.looseObject({
      attempt: z.number(),
      statusCode: z.number().nullable(),
      error: z.string().nullable(),
      at: z.string(),
    }),
  ),
});
export type Delivery = z.infer<typeof Delivery>;
export const DeliveryList = z.looseObject({
  deliveries: z.array(Delivery),
  nextCursor: z.string().nullable(),
});

/** An RFC 9457 problem document (docs/api.md, "Errors"). */
