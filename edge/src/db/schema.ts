/**
 * The D1 schema. migrations/ is generated from this file by drizzle-kit (`npm run db:generate`);
 * never edit the generated SQL by hand (a data migration is its own file, from
 * `drizzle-kit generate --custom`). Times are integer milliseconds since the epoch (UTC).
 */

import type { FailRequest, JobEvent, Progress, TaskPayload, WebhookEvent } from "@revq/shared";
import { JOB_KINDS, JOB_STATUSES, TASK_STATUSES } from "@revq/shared";
import { sql } from "drizzle-orm";
import {
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";
import type { JobResult } from "./job-results.ts";

const createdAt = () => integer("created_at").notNull().default(sql`(unixepoch('subsec') * 1000)`);

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** The tokenizer a job of this tenant's that names none uses; null: the deployment's default. */
  defaultTokenizerId: text("default_tokenizer_id"),
  createdAt: createdAt(),
});

/** Only the SHA-256 of a key is stored; the key itself is shown once, when it is created. */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    kind: text("kind", { enum: ["api", "worker"] }).notNull(),
    name: text("name").notNull(),
    /** Lowercase hex SHA-256 of the whole key. */
    hash: text("hash").notNull().unique(),
    /** The key's first characters, so that a person can tell keys apart in a listing. */
    prefix: text("prefix").notNull(),
    createdAt: createdAt(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [index("api_keys_tenant").on(t.tenantId)],
);

export const images = sqliteTable(
  "images",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    bucketKey: text("bucket_key").notNull(),
    format: text("format", { enum: ["png", "jpeg", "webp"] }).notNull(),
    width: integer("width").notNull(),
    height: integer("height").notNull(),
    bytes: integer("bytes").notNull(),
    /** Lowercase hex SHA-256 of the stored bytes; also the object's ETag. */
    sha256: text("sha256").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("images_tenant").on(t.tenantId, t.id)],
);

/**
 * A tenant's named training set. An "upload" dataset holds images uploaded through the edge, in
 * the order they were added (dataset_images); a "prefix" dataset is every image file the tenant
 * keeps under tenants/{tenantId}/files/{prefix} (put there through the S3 door), listed when a
 * train job freezes it, so its counts are null here.
 */
export const datasets = sqliteTable(
  "datasets",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    source: text("source", { enum: ["upload", "prefix"] }).notNull(),
    /** The path under the tenant's files, for a prefix dataset. */
    prefix: text("prefix"),
    imageCount: integer("image_count"),
    /** The images' bytes in all. */
    bytes: integer("bytes"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [index("datasets_tenant").on(t.tenantId, t.id)],
);

/**
 * The images of an upload dataset. Positions are 0 .. image_count - 1 in the order added; their
 * uniqueness is what makes two concurrent additions to one dataset conflict instead of
 * interleave (both would start at the same position).
 */
export const datasetImages = sqliteTable(
  "dataset_images",
  {
    datasetId: text("dataset_id")
      .notNull()
      .references(() => datasets.id),
    imageId: text("image_id")
      .notNull()
      .references(() => images.id),
    position: integer("position").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.datasetId, t.imageId] }),
    uniqueIndex("dataset_images_position").on(t.datasetId, t.position),
  ],
);

/**
 * Answers remembered for an Idempotency-Key, per tenant and route. A row without a body is a
 * request still in progress; rows are dropped by the cron sweep after a day.
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    tenantId: text("tenant_id").notNull(),
    route: text("route").notNull(),
    key: text("key").notNull(),
    /** SHA-256 of what makes two requests the same: method, path, content type and body. */
    fingerprint: text("fingerprint").notNull(),
    body: text("body"),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.route, t.key] }),
    index("idempotency_age").on(t.createdAt),
  ],
);

/**
 * Tokenizers: a validated manifest (its canonical JSON; its SHA-256 is the identity) whose files
 * are in the bucket under tokenizers/{hash}/. `owner` is "public" (registered by the admin, seen
 * by every tenant) or the tenant that trained it. A tokenizer is usable once every file is there.
 */
export const tokenizers = sqliteTable(
  "tokenizers",
  {
    id: text("id").primaryKey(),
    owner: text("owner").notNull(),
    manifestHash: text("manifest_hash").notNull(),
    name: text("name").notNull(),
    manifest: text("manifest").notNull(),
    status: text("status", { enum: ["pending", "ready"] }).notNull(),
    createdAt: createdAt(),
    readyAt: integer("ready_at"),
    /**
     * When its tenant deleted it: it serves no new job and is listed nowhere, but tokens made
     * with it still decode by their hash (its files stay: they are content-addressed).
     */
    deletedAt: integer("deleted_at"),
  },
  (t) => [
    uniqueIndex("tokenizers_owner_hash").on(t.owner, t.manifestHash),
    // A tenant's names are unique among its live tokenizers, so a name says which one it means.
    // Public ones may share a name (a re-released default): the name means the newest.
    uniqueIndex("tokenizers_owner_name")
      .on(t.owner, t.name)
      .where(sql`${t.deletedAt} is null and ${t.owner} <> 'public'`),
  ],
);

/** Why a job failed: the worker's error, or the edge's (an expired lease, an unreadable payload). */
export type JobError = FailRequest["error"];

/**
 * What a client asked for and how it went. JSON columns hold text validated on the way in;
 * drizzle parses and writes them (`mode: "json"`).
 */
export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    kind: text("kind", { enum: JOB_KINDS }).notNull(),
    status: text("status", { enum: JOB_STATUSES }).notNull(),
    tokenizerId: text("tokenizer_id"),
    tokenizerHash: text("tokenizer_hash"),
    /** The request's inputs (and parameters), as accepted. */
    inputs: text("inputs", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    webhookUrl: text("webhook_url"),
    /**
     * Signs deliveries to webhookUrl; shown once, in the answer that created the job. Encrypted
     * (services/webhooks/secret.ts).
     */
    webhookSecret: text("webhook_secret"),
    /** The latest progress a worker reported. */
    progress: text("progress", { mode: "json" }).$type<Progress>(),
    result: text("result", { mode: "json" }).$type<JobResult>(),
    error: text("error", { mode: "json" }).$type<JobError>(),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
    finishedAt: integer("finished_at"),
    /** An extract job's train job: the one whose dataset it extracts latents for. */
    parentJobId: text("parent_job_id"),
  },
  (t) => [
    index("jobs_tenant").on(t.tenantId, t.id),
    index("jobs_tenant_status").on(t.tenantId, t.status, t.id),
    index("jobs_parent").on(t.parentJobId),
    // The sweep finds the secrets not under the current key by range (services/webhooks/secret.ts).
    index("jobs_webhook_secret").on(t.webhookSecret).where(sql`${t.webhookSecret} IS NOT NULL`),
  ],
);

/**
 * The pull queue: one task per job. A task is leased by a worker until lease_expires_at; the
 * lease_id names that one lease, and every later call must present it.
 */
export const tasks = sqliteTable(
  "tasks",
  {
    id: text("id").primaryKey(),
    jobId: text("job_id")
      .notNull()
      .unique()
      .references(() => jobs.id),
    tenantId: text("tenant_id").notNull(),
    kind: text("kind", { enum: JOB_KINDS }).notNull(),
    status: text("status", { enum: TASK_STATUSES }).notNull(),
    /**
     * The TaskPayload (shared/src/protocol/worker-api.ts). Read it through TaskPayload's parser
     * all the same: a task queued by an older release may hold another protocol's payload.
     */
    payload: text("payload", { mode: "json" }).$type<TaskPayload>().notNull(),
    /** Leases taken so far. */
    attempt: integer("attempt").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    /** Not leased before this time (retry backoff). */
    availableAt: integer("available_at").notNull(),
    leaseId: text("lease_id"),
    leaseExpiresAt: integer("lease_expires_at"),
    /** The worker key and the name the worker gave. */
    leasedBy: text("leased_by"),
    workerName: text("worker_name"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    index("tasks_ready").on(t.tenantId, t.status, t.availableAt),
    index("tasks_leases").on(t.status, t.leaseExpiresAt),
  ],
);

/** What happened to a job, in order: status changes, progress, metrics, worker messages. */
export const jobEvents = sqliteTable(
  "job_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    jobId: text("job_id").notNull(),
    tenantId: text("tenant_id").notNull(),
    type: text("type", { enum: ["status", "progress", "metrics", "log"] }).notNull(),
    data: text("data", { mode: "json" }).$type<JobEvent["data"]>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("job_events_job").on(t.jobId, t.id)],
);

/**
 * A tenant's webhook endpoints. The signing secret is kept, encrypted (it signs every delivery;
 * services/webhooks/secret.ts), but shown only once, when the endpoint is created.
 */
export const webhookEndpoints = sqliteTable(
  "webhook_endpoints",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    url: text("url").notNull(),
    secret: text("secret").notNull(),
    /** The event types it receives. */
    events: text("events", { mode: "json" }).$type<WebhookEvent[]>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index("webhook_endpoints_tenant").on(t.tenantId),
    index("webhook_endpoints_secret").on(t.secret),
  ],
);

/** One message to one target (an endpoint, or a job's own URL), with its retry state. */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    endpointId: text("endpoint_id"),
    jobId: text("job_id"),
    url: text("url").notNull(),
    /** The Standard Webhooks message id (webhook-id): the same for every attempt and redelivery. */
    messageId: text("message_id").notNull(),
    eventType: text("event_type").notNull(),
    payload: text("payload").notNull(),
    status: text("status", { enum: ["pending", "succeeded", "failed"] }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at"),
    /** Set when sending its queue message failed: the next sweep sends it, and clears this. */
    sendFailedAt: integer("send_failed_at"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    index("webhook_deliveries_endpoint").on(t.endpointId, t.id),
    index("webhook_deliveries_job").on(t.jobId, t.id),
    index("webhook_deliveries_due").on(t.status, t.nextAttemptAt),
  ],
);

/** Every delivery attempt, kept. */
export const webhookAttempts = sqliteTable(
  "webhook_attempts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    deliveryId: text("delivery_id").notNull(),
    attempt: integer("attempt").notNull(),
    statusCode: integer("status_code"),
    error: text("error"),
    durationMs: integer("duration_ms").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("webhook_attempts_delivery").on(t.deliveryId, t.attempt)],
);
