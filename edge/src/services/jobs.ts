/**
 * Jobs as clients see them: creating one (checking every reference and building the task
 * payload the worker will get), reading, listing with cursor pagination, and cancelling.
 */
import {
  bucketKeys,
  type DatasetEntry,
  type ImageInput,
  type TaskPayload,
  type TokenizerRef,
} from "@revq/shared";
import { and, desc, eq, inArray, lt } from "drizzle-orm";
import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import { resultOf } from "../db/job-results.ts";
import { type JobStatus, jobEvents, jobs, tasks } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import type { JobCreate } from "../schemas/jobs.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { datasetEntries, extractGroups, freezeDataset, missingShards } from "./dataset-listing.ts";
import { findDataset } from "./datasets.ts";
import { newId } from "./ids.ts";
import { tenantImages } from "./images.ts";
import { eventIfChangedStatement } from "./job-events.ts";
import { JOB_VIEW_COLUMNS, jobView } from "./job-view.ts";
import { findTokenizer, manifestOf, type TokenizerRow } from "./tokenizers.ts";
import { newSigningSecret, sealSecret } from "./webhook-secret.ts";
import { checkWebhookTarget } from "./webhook-target.ts";
import { endingOutbox, sendDeliveries } from "./webhooks.ts";

export type JobRow = typeof jobs.$inferSelect;

export const OPEN_STATUSES: JobStatus[] = ["queued", "running"];

type ExtractPayload = Extract<TaskPayload, { kind: "extract" }>;

function tokenizerRef(row: TokenizerRow): TokenizerRef {
  return {
    id: row.id,
    manifestHash: row.manifestHash,
    manifestKey: bucketKeys.tokenizerManifest(row.manifestHash),
    filesPrefix: bucketKeys.tokenizerFile(row.manifestHash, ""),
  };
}

async function readyTokenizer(db: Db, tenantId: string, idOrHash: string): Promise<TokenizerRow> {
  let row: TokenizerRow;
  try {
    row = await findTokenizer(db, tenantId, idOrHash);
  } catch (error) {
    if (error instanceof HttpProblem && error.status === 404) {
      throw new HttpProblem(
        422,
        "tokenizer-not-found",
        `No tokenizer ${idOrHash} is available to this tenant.`,
      );
    }
    throw error;
  }
  if (row.status !== "ready") {
    throw new HttpProblem(
      409,
      "tokenizer-not-ready",
      `Tokenizer ${row.id} is still waiting for its files.`,
    );
  }
  return row;
}

/** The tenant's images with these ids as encode inputs, in the order given. */
async function imageInputs(db: Db, tenantId: string, ids: string[]): Promise<ImageInput[]> {
  return (await tenantImages(db, tenantId, ids)).map((row) => ({
    imageId: row.id,
    bucketKey: row.bucketKey,
    format: row.format,
    width: row.width,
    height: row.height,
  }));
}

/** The images a train job names (inline, or a dataset of the tenant's), in training order. */
async function trainingEntries(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  inputs: Extract<JobCreate, { kind: "train" }>["inputs"],
): Promise<DatasetEntry[]> {
  if ("images" in inputs) {
    const rows = await tenantImages(db, tenantId, inputs.images);
    return rows.map((row) => ({ key: row.bucketKey, etag: row.sha256 }));
  }
  const dataset = await findDataset(db, tenantId, inputs.dataset).catch((error) => {
    if (error instanceof HttpProblem && error.status === 404) {
      throw new HttpProblem(422, "dataset-not-found", `No dataset ${inputs.dataset} to train on.`);
    }
    throw error;
  });
  return datasetEntries(env.BUCKET, db, config, dataset);
}

/** The tokenizer a train job's VAE comes from: the one named, or the deployment's default. */
function baseTokenizer(config: Config, named: string | undefined): string {
  const base = named ?? config.defaultTokenizer;
  if (base === undefined) {
    throw new HttpProblem(
      422,
      "tokenizer-required",
      "Name the tokenizer whose VAE to train on: this deployment has no default tokenizer (DEFAULT_TOKENIZER).",
    );
  }
  return base;
}

export async function findJob(db: Db, tenantId: string, id: string): Promise<JobRow> {
  const [row] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "job-not-found", `No job ${id}.`);
  return row;
}

/** A job with the attempts of its task, as the API shows it. */
export async function findJobView(db: Db, tenantId: string, id: string) {
  const [row] = await db
    .select(JOB_VIEW_COLUMNS)
    .from(jobs)
    .innerJoin(tasks, eq(tasks.jobId, jobs.id))
    .where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "job-not-found", `No job ${id}.`);
  return jobView(row);
}

/**
 * The payload of the new job's task (every key and parameter the worker needs) and, for a train
 * job, those of the extract jobs that go with it.
 */
async function taskPayload(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  jobId: string,
  body: JobCreate,
): Promise<{ tokenizer: TokenizerRow; payload: TaskPayload; extract: ExtractPayload[] }> {
  switch (body.kind) {
    case "encode": {
      const tokenizer = await readyTokenizer(db, tenantId, body.tokenizer);
      const payload: TaskPayload = {
        kind: "encode",
        tokenizer: tokenizerRef(tokenizer),
        images: await imageInputs(db, tenantId, body.inputs.images),
        output: { tokens: bucketKeys.jobTokens(tenantId, jobId) },
      };
      return { tokenizer, payload, extract: [] };
    }
    case "reconstruct": {
      const tokenizer = await readyTokenizer(db, tenantId, body.tokenizer);
      const source = await findJob(db, tenantId, body.inputs.job).catch((error) => {
        if (error instanceof HttpProblem) {
          throw new HttpProblem(
            422,
            "job-not-found",
            `No job ${body.inputs.job} to take tokens from.`,
          );
        }
        throw error;
      });
      const encoded = resultOf(source, "encode");
      if (source.status !== "succeeded" || encoded === null) {
        throw new HttpProblem(
          422,
          "tokens-not-available",
          `Job ${source.id} is a ${source.status} ${source.kind} job; reconstruct needs a succeeded encode job.`,
        );
      }
      const { tokens } = encoded;
      if (tokens.tokenizerHash !== tokenizer.manifestHash) {
        throw new HttpProblem(
          422,
          "token-stream.bad-tokenizer-hash",
          `Job ${source.id}'s tokens were made by tokenizer ${tokens.tokenizerHash}, not ${tokenizer.manifestHash}.`,
        );
      }
      const payload: TaskPayload = {
        kind: "reconstruct",
        tokenizer: tokenizerRef(tokenizer),
        input: {
          tokens: bucketKeys.jobTokens(tenantId, source.id),
          recordCount: tokens.recordCount,
        },
        output: {
          images: Array.from({ length: tokens.recordCount }, (_, i) =>
            bucketKeys.jobImage(tenantId, jobId, i),
          ),
        },
      };
      return { tokenizer, payload, extract: [] };
    }
    case "train": {
      const tokenizer = await readyTokenizer(db, tenantId, baseTokenizer(config, body.tokenizer));
      const base = tokenizerRef(tokenizer);
      const entries = await trainingEntries(env, db, config, tenantId, body.inputs);
      const dataset = await freezeDataset(
        env.BUCKET,
        tenantId,
        entries,
        manifestOf(tokenizer).vae,
        config,
      );
      const payload: TaskPayload = {
        kind: "train",
        base,
        dataset,
        parameters: body.parameters,
        output: { checkpoints: bucketKeys.jobCheckpoints(tenantId, jobId) },
      };
      // Shards an earlier job extracted under the same VAE are reused, never made again.
      const groups = extractGroups(
        await missingShards(env.BUCKET, dataset),
        config.extractTaskShards,
      );
      const extract = groups.map(
        (shards): ExtractPayload => ({ kind: "extract", vae: base, dataset, shards }),
      );
      return { tokenizer, payload, extract };
    }
  }
}

/** The inserts of one job: its row, its task and its first event. */
function jobStatements(db: Db, config: Config, job: JobRow, taskId: string, payload: TaskPayload) {
  const { id: jobId, tenantId, kind, createdAt: now } = job;
  return [
    db.insert(jobs).values(job),
    db.insert(tasks).values({
      id: taskId,
      jobId,
      tenantId,
      kind,
      status: "queued",
      payload,
      attempt: 0,
      maxAttempts: config.taskMaxAttempts,
      availableAt: now,
      createdAt: now,
      updatedAt: now,
    }),
    db.insert(jobEvents).values({
      jobId,
      tenantId,
      type: "status",
      data: JSON.stringify({ status: "queued" }),
      createdAt: now,
    }),
  ] as const;
}

/**
 * Creates the job, its task and its first event, and those of a train job's extract jobs, in
 * one D1 batch. With a webhookUrl, also its signing secret: the row keeps it encrypted, the
 * caller gets it in clear to show once.
 */
export async function createJob(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  body: JobCreate,
): Promise<{ job: JobRow; webhookSecret?: string }> {
  const now = Date.now();
  const jobId = newId("job", now);
  if (body.webhookUrl) checkWebhookTarget(body.webhookUrl, config.allowLoopbackWebhooks);
  const { tokenizer, payload, extract } = await taskPayload(env, db, config, tenantId, jobId, body);
  const { kind, webhookUrl, ...request } = body;
  const { tokenizer: _named, ...inputs } = request as Record<string, unknown>;
  const row = (fields: Pick<JobRow, "id" | "kind" | "inputs" | "parentJobId">): JobRow => ({
    ...fields,
    tenantId,
    status: "queued",
    tokenizerId: tokenizer.id,
    tokenizerHash: tokenizer.manifestHash,
    webhookUrl: null,
    webhookSecret: null,
    progress: null,
    result: null,
    error: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  });
  const webhookSecret = webhookUrl ? newSigningSecret() : undefined;
  const job: JobRow = {
    ...row({ id: jobId, kind, inputs, parentJobId: null }),
    webhookUrl: webhookUrl ?? null,
    webhookSecret: webhookSecret ? await sealSecret(env, webhookSecret, jobId) : null,
  };
  // The queue leases by (available_at, id): sorted task ids of one instant put the extract
  // tasks ahead of their train task, so that free workers take them first; sorted job ids list
  // the extract jobs in the same order, that of their shards.
  const sortedIds = (prefix: "job" | "tsk", n: number) =>
    Array.from({ length: n }, () => newId(prefix, now)).sort();
  const taskIds = sortedIds("tsk", extract.length + 1);
  const extractJobIds = sortedIds("job", extract.length);
  const extractJobs = extract.map((extractPayload, i) => {
    const extractJob = row({
      id: extractJobIds[i],
      kind: "extract",
      inputs: { shards: extractPayload.shards },
      parentJobId: jobId,
    });
    return jobStatements(db, config, extractJob, taskIds[i], extractPayload);
  });
  const [first, ...rest] = [
    ...extractJobs.flat(),
    ...jobStatements(db, config, job, taskIds[extract.length], payload),
  ];
  await db.batch([first, ...rest]);
  return { job, webhookSecret };
}

export type JobFilter = {
  status?: JobStatus;
  kind?: JobRow["kind"];
  limit: number;
  cursor?: string;
};

/** A page of the tenant's jobs, newest first. */
export async function listJobs(db: Db, tenantId: string, filter: JobFilter) {
  const conditions = [eq(jobs.tenantId, tenantId)];
  if (filter.status) conditions.push(eq(jobs.status, filter.status));
  if (filter.kind) conditions.push(eq(jobs.kind, filter.kind));
  if (filter.cursor) conditions.push(lt(jobs.id, decodeCursor(filter.cursor)));
  const rows = await db
    .select(JOB_VIEW_COLUMNS)
    .from(jobs)
    .innerJoin(tasks, eq(tasks.jobId, jobs.id))
    .where(and(...conditions))
    .orderBy(desc(jobs.id))
    .limit(filter.limit + 1);
  const page = rows.slice(0, filter.limit);
  return {
    jobs: page.map(jobView),
    nextCursor: rows.length > filter.limit ? encodeCursor(page[page.length - 1].job.id) : null,
  };
}

/**
 * Cancels a job and its task if it is open, with the deliveries of its ending right after its
 * status event. An extract job is cancelled with its train job: `parentId` then guards it on the
 * train job having been cancelled earlier in the batch.
 */
function cancelStatements(
  d1: D1Database,
  job: { id: string; tenantId: string },
  now: number,
  deliveries: D1PreparedStatement[],
  parentId?: string,
): D1PreparedStatement[] {
  const parentCancelled = parentId
    ? " AND EXISTS (SELECT 1 FROM jobs WHERE id = ?3 AND status = 'cancelled')"
    : "";
  return [
    d1
      .prepare(
        `UPDATE jobs SET status = 'cancelled', finished_at = ?1, updated_at = ?1 WHERE id = ?2 AND status IN ('queued', 'running')${parentCancelled}`,
      )
      .bind(now, job.id, ...(parentId ? [parentId] : [])),
    eventIfChangedStatement(
      d1,
      job,
      "status",
      parentId ? { status: "cancelled", reason: "parent-cancelled" } : { status: "cancelled" },
      now,
    ),
    ...deliveries,
    d1
      .prepare(
        "UPDATE tasks SET status = 'cancelled', updated_at = ?1 WHERE job_id = ?2 AND status IN ('queued', 'leased') AND EXISTS (SELECT 1 FROM jobs WHERE id = ?2 AND status = 'cancelled')",
      )
      .bind(now, job.id),
  ];
}

/**
 * Cancels an open job and its task (and a train job's unfinished extract jobs); a worker holding
 * a task learns it at its next heartbeat. The batch that cancels a job writes its webhook
 * deliveries; a repeat changes nothing and sends nothing.
 */
export async function cancelJob(env: Env, db: Db, tenantId: string, id: string) {
  const job = await findJob(db, tenantId, id);
  if (job.status === "cancelled") return findJobView(db, tenantId, id);
  if (!OPEN_STATUSES.includes(job.status)) {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${job.status}.`);
  }
  const extractJobs =
    job.kind === "train"
      ? await db
          .select({ id: jobs.id, tenantId: jobs.tenantId })
          .from(jobs)
          .where(and(eq(jobs.parentJobId, id), inArray(jobs.status, OPEN_STATUSES)))
      : [];
  const now = Date.now();
  // Extract jobs end with their train job, which is the one event.
  const outbox = await endingOutbox(env, job.id, { status: "cancelled" }, now);
  const outcomes = await env.DB.batch([
    ...cancelStatements(env.DB, job, now, outbox.statements),
    ...extractJobs.flatMap((each) => cancelStatements(env.DB, each, now, [], job.id)),
  ]);
  // The job's own update comes first.
  if (outcomes[0].meta.changes > 0) await sendDeliveries(env, outbox.deliveryIds);
  const after = await findJobView(db, tenantId, id);
  if (after.status !== "cancelled") {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${after.status}.`);
  }
  return after;
}
