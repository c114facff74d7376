/** The client API's webhook shapes (api/common.ts says how they are used). */
import * as z from "zod";
import { WEBHOOK_EVENTS } from "../protocol/vocabulary.ts";
import { NextCursor, Timestamp } from "./common.ts";

export const WebhookCreate = z
  .strictObject({
    url: z.url({ protocol: /^https?$/ }).max(2048),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .default([...WEBHOOK_EVENTS]),
  })
  .meta({ id: "WebhookCreate" });

export const Webhook = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENTS)),
    createdAt: Timestamp,
  })
  .meta({ id: "Webhook" });
export type Webhook = z.infer<typeof Webhook>;

/** An intersection, so that the document refers to Webhook rather than repeating it. */
export const WebhookCreated = z
  .intersection(
    Webhook,
    z.object({
      secret: z.string().meta({
        description: "The Standard Webhooks signing secret (`whsec_...`). Shown only here.",
      }),
    }),
  )
  .meta({ id: "WebhookCreated" });

export const WebhookList = z.object({ webhooks: z.array(Webhook) });

export const WebhookDelivery = z
  .object({
    id: z.string(),
    endpointId: z.string().nullable(),
    jobId: z.string().nullable(),
    url: z.string(),
    messageId: z
      .string()
      .meta({ description: "The `webhook-id` header: the same for every attempt." }),
    eventType: z.enum(WEBHOOK_EVENTS),
    status: z.enum(["pending", "succeeded", "failed"]),
    nextAttemptAt: Timestamp.nullable(),
    createdAt: Timestamp,
    attempts: z.array(
      z.object({
        attempt: z.int(),
        statusCode: z.int().nullable(),
        error: z.string().nullable(),
        durationMs: z.int(),
        at: Timestamp,
      }),
    ),
  })
  .meta({ id: "WebhookDelivery" });
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const WebhookDeliveryList = z
  .object({ deliveries: z.array(WebhookDelivery), nextCursor: NextCursor })
  .meta({ id: "WebhookDeliveryList" });
