/**
 * The answers of the client API that the CLI reads and @revq/shared does not define yet (jobs,
 * tokenizers and datasets are its, the edge's own schemas), checked before use so that a version
 * skew between CLI and edge is an error that names the field, not an `undefined` further on.
 * They follow the edge's routes (served as /v1/openapi.json) but are loose: fields an edge adds
 * later are let through.
 */
import * as z from "zod";

/** A succeeded reconstruct job's result: one PNG per record, downloadable at its url. */
export const ReconstructResult = z.looseObject({
  images: z.array(z.looseObject({ index: z.number(), bytes: z.number(), url: z.string() })),
});

export const UploadedImages = z.looseObject({
  images: z.array(
    z.looseObject({ id: z.string(), format: z.string(), width: z.number(), height: z.number() }),
  ),
});

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
