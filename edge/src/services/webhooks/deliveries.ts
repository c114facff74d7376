/**
 * Webhook deliveries: each written when its job ended (outbox.ts), sent from the queue consumer,
 * signed per Standard Webhooks, retried with exponential backoff and jitter over about a day,
 * every attempt recorded; lost queue messages are sent again by the sweep.
 */
import { and, eq, inArray, isNotNull, lt, or } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import type { Config } from "../../config.ts";
import { chunked, type Db, database } from "../../db/client.ts";
import { jobs, webhookAttempts, webhookDeliveries, webhookEndpoints } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { newId } from "../ids.ts";
import { ID_CHUNK } from "../job-limits.ts";
import { openSecret } from "./secret.ts";
import { checkWebhookTarget } from "./target.ts";

/**
 * Endpoints a tenant may register: a job's end fans out to each of them (one delivery, queue
 * message and fetch apiece, retried for a day), so the fan-out of one job stays small.
 */
export const MAX_WEBHOOK_ENDPOINTS = 20;

/** Seconds to wait after attempt n (1-based) fails, before jitter: about 24 hours in all. */
export const RETRY_DELAYS_S = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800];
export const MAX_ATTEMPTS = RETRY_DELAYS_S.length + 1;
const ATTEMPT_TIMEOUT_MS = 15_000;
/** A pending delivery this long past due lost its queue message; the sweep sends it again. */
export const LOST_AFTER_MS = 15 * 60_000;
/** Cloudflare Queues takes at most 100 messages (and 256 KB) in one sendBatch. */
const SEND_BATCH = 100;
/** The most deliveries one sweep (one a minute) sends again: a few batches. */
const SWEEP_LIMIT = 500;

export type DeliveryMessage = { deliveryId: string };
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;

export function retryDelaySeconds(attempt: number, random = Math.random()): number {
  return Math.round(RETRY_DELAYS_S[attempt - 1] * (0.8 + 0.4 * random));
}

type Outgoing = { deliveryId: string; delaySeconds: number };

/**
 * Sends one queue message per delivery, in batches the queue accepts. A batch that fails is
 * logged and its deliveries marked, so that the next sweep sends them again (within a minute,
 * not after LOST_AFTER_MS).
 */
export async function enqueue(env: Env, db: Db, outgoing: Outgoing[]): Promise<void> {
  for (const batch of chunked(outgoing, SEND_BATCH)) {
    try {
      await env.WEBHOOKS.sendBatch(
        batch.map(({ deliveryId, delaySeconds }) => ({
          body: { deliveryId } satisfies DeliveryMessage,
          delaySeconds,
        })),
      );
    } catch (error) {
      console.error(
        `queueing ${batch.length} webhook deliveries failed; the next sweep sends them:`,
        error,
      );
      await setSendFailed(
        db,
        batch.map((m) => m.deliveryId),
        Date.now(),
      );
    }
  }
}

async function setSendFailed(db: Db, ids: string[], at: number | null): Promise<void> {
  const updates = chunked(ids, ID_CHUNK).map((chunk) =>
    db
      .update(webhookDeliveries)
      .set({ sendFailedAt: at })
      .where(inArray(webhookDeliveries.id, chunk)),
  );
  if (updates.length === 0) return;
  const [first, ...rest] = updates;
  await db.batch([first, ...rest]);
}

/** Sends a delivery again, as a new delivery with the same message (and so the same webhook-id). */
export async function redeliver(env: Env, db: Db, delivery: DeliveryRow): Promise<DeliveryRow> {
  const now = Date.now();
  const row: DeliveryRow = {
    ...delivery,
    id: newId("dlv", now),
    status: "pending",
    attempts: 0,
    nextAttemptAt: now,
    sendFailedAt: null,
    createdAt: now,
    updatedAt: now,
  };
  await db.insert(webhookDeliveries).values(row);
  await enqueue(env, db, [{ deliveryId: row.id, delaySeconds: 0 }]);
  return row;
}

async function signingSecret(env: Env, db: Db, delivery: DeliveryRow) {
  if (delivery.endpointId) {
    const [endpoint] = await db
      .select({ secret: webhookEndpoints.secret })
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.id, delivery.endpointId));
    return endpoint && openSecret(env, endpoint.secret, delivery.endpointId);
  }
  const jobId = delivery.jobId ?? "";
  const [job] = await db
    .select({ secret: jobs.webhookSecret })
    .from(jobs)
    .where(eq(jobs.id, jobId));
  return job?.secret ? openSecret(env, job.secret, jobId) : undefined;
}

export type AttemptOutcome =
  | { status: "succeeded" | "failed" | "skipped" }
  | { status: "retry"; delaySeconds: number };

/** One attempt at a pending delivery: sends it, records the attempt, decides what comes next. */
export async function attemptDelivery(
  env: Env,
  config: Config,
  deliveryId: string,
): Promise<AttemptOutcome> {
  const db = database(env);
  const [delivery] = await db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.id, deliveryId));
  if (delivery?.status !== "pending") return { status: "skipped" };
  const attempt = delivery.attempts + 1;
  const started = Date.now();
  let statusCode: number | null = null;
  let error: string | null = null;
  let final = false;
  const secret = await signingSecret(env, db, delivery);
  try {
    if (!secret) {
      final = true;
      throw new Error("the endpoint was deleted");
    }
    try {
      checkWebhookTarget(delivery.url, config.allowLoopbackWebhooks);
    } catch (problem) {
      final = true;
      throw problem;
    }
    const signature = new Webhook(secret).sign(
      delivery.messageId,
      new Date(started),
      delivery.payload,
    );
    const res = await fetch(delivery.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "webhook-id": delivery.messageId,
        "webhook-timestamp": String(Math.floor(started / 1000)),
        "webhook-signature": signature,
        "user-agent": "revq-webhooks/1",
      },
      body: delivery.payload,
      redirect: "manual",
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
    });
    statusCode = res.status;
    await res.body?.cancel();
    if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
  } catch (thrown) {
    error = thrown instanceof Error ? thrown.message : String(thrown);
  }
  const now = Date.now();
  const succeeded = error === null;
  const retry = !succeeded && !final && attempt < MAX_ATTEMPTS;
  const delaySeconds = retry ? retryDelaySeconds(attempt) : 0;
  const status = succeeded ? "succeeded" : retry ? "pending" : "failed";
  await db.batch([
    db.insert(webhookAttempts).values({
      deliveryId,
      attempt,
      statusCode,
      error,
      durationMs: now - started,
      createdAt: now,
    }),
    db
      .update(webhookDeliveries)
      .set({
        status,
        attempts: attempt,
        nextAttemptAt: retry ? now + delaySeconds * 1000 : null,
        updatedAt: now,
      })
      .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.status, "pending"))),
  ]);
  if (retry) return { status: "retry", delaySeconds };
  return { status: succeeded ? "succeeded" : "failed" };
}

/** The queue consumer: one attempt per message; a retry is a new message, delayed. */
export async function handleWebhookBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  config: Config,
): Promise<void> {
  for (const message of batch.messages) {
    const { deliveryId } = message.body as DeliveryMessage;
    try {
      const outcome = await attemptDelivery(env, config, deliveryId);
      if (outcome.status === "retry") {
        await enqueue(env, database(env), [{ deliveryId, delaySeconds: outcome.delaySeconds }]);
      }
      message.ack();
    } catch (error) {
      console.error(`webhook delivery ${deliveryId}:`, error);
      message.retry({ delaySeconds: 30 });
    }
  }
}

/**
 * Queues again the pending deliveries whose message could not be sent or was lost, each delayed
 * until its next attempt is due; run by the cron sweep. A send that fails again marks them again.
 */
export async function requeueLostDeliveries(env: Env, now: number): Promise<number> {
  const db = database(env);
  const lost = await db
    .select({ id: webhookDeliveries.id, nextAttemptAt: webhookDeliveries.nextAttemptAt })
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.status, "pending"),
        or(
          isNotNull(webhookDeliveries.sendFailedAt),
          lt(webhookDeliveries.nextAttemptAt, now - LOST_AFTER_MS),
        ),
      ),
    )
    .limit(SWEEP_LIMIT);
  await setSendFailed(
    db,
    lost.map((d) => d.id),
    null,
  );
  await enqueue(
    env,
    db,
    lost.map((d) => ({
      deliveryId: d.id,
      delaySeconds: Math.max(0, Math.ceil(((d.nextAttemptAt ?? now) - now) / 1000)),
    })),
  );
  return lost.length;
}
