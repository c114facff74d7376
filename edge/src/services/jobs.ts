/**
 * Jobs as clients see them: creating one (checking every reference and building the task
 * payload the worker will get), reading, listing with cursor pagination, and cancelling.
 */
import { bucketKeys, type ImageInput, type TaskPayload, type TokenizerRef } from "@revq/shared";
import { and, desc, eq, inArray, lt } from "drizzle-orm";
import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import { images, type JobStatus, jobEvents, jobs, tasks } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import type { JobCreate } from "../schemas/jobs.ts";
import { newId } from "./ids.ts";
import { eventIfChangedStatement } from "./job-events.ts";
import { ID_CHUNK } from "./job-limits.ts";
import { jobView } from "./job-view.ts";
import { findTokenizer, type TokenizerRow } from "./tokenizers.ts";
import { newSigningSecret } from "./webhook-secret.ts";
import { checkWebhookTarget } from "./webhook-target.ts";
import { notifyJobEnded } from "./webhooks.ts";

export type JobRow = typeof jobs.$inferSelect;

export const OPEN_STATUSES: JobStatus[] = ["queued", "running"];

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

/** The tenant's images with these ids, in the order given; a 422 names any that do not exist. */
async function imageInputs(db: Db, tenantId: string, ids: string[]): Promise<ImageInput[]> {
  const found = new Map<string, typeof images.$inferSelect>();
  for (let i = 0; i < ids.length; i += ID_CHUNK) {
    const rows = await db
      .select()
      .from(images)
      .where(and(eq(images.tenantId, tenantId), inArray(images.id, ids.slice(i, i + ID_CHUNK))));
    for (const row of rows) found.set(row.id, row);
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(", ");
    throw new HttpProblem(
      422,
      "image-not-found",
      `${missing.length} of the images do not exist: ${shown}${missing.length > 5 ? ", ..." : ""}.`,
    );
  }
  return ids.map((id) => {
    const row = found.get(id) as typeof images.$inferSelect;
    return {
      imageId: id,
      bucketKey: row.bucketKey,
      format: row.format,
      width: row.width,
      height: row.height,
    };
  });
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
    .select({ job: jobs, attempts: tasks.attempt })
    .from(jobs)
    .innerJoin(tasks, eq(tasks.jobId, jobs.id))
    .where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "job-not-found", `No job ${id}.`);
  return jobView(row.job, row.attempts);
}

/** The payload of the new job's task: every key and parameter the worker needs. */
async function taskPayload(db: Db, tenantId: string, jobId: string, body: JobCreate) {
  switch (body.kind) {
    case "encode": {
      const tokenizer = await readyTokenizer(db, tenantId, body.tokenizer);
      const payload: TaskPayload = {
        kind: "encode",
        tokenizer: tokenizerRef(tokenizer),
        images: await imageInputs(db, tenantId, body.inputs.images),
        output: { tokens: bucketKeys.jobTokens(tenantId, jobId) },
      };
      return { tokenizer, payload };
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
      if (source.kind !== "encode" || source.status !== "succeeded") {
        throw new HttpProblem(
          422,
          "tokens-not-available",
          `Job ${source.id} is a ${source.status} ${source.kind} job; reconstruct needs a succeeded encode job.`,
        );
      }
      const tokens = (
        JSON.parse(source.result ?? "{}") as {
          tokens: { recordCount: number; tokenizerHash: string };
        }
      ).tokens;
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
      return { tokenizer, payload };
    }
    case "train": {
      const tokenizer =
        body.tokenizer === undefined
          ? undefined
          : await readyTokenizer(db, tenantId, body.tokenizer);
      const payload: TaskPayload = {
        kind: "train",
        ...(tokenizer ? { base: tokenizerRef(tokenizer) } : {}),
        images: await imageInputs(db, tenantId, body.inputs.images),
        parameters: body.parameters,
        output: { checkpoints: bucketKeys.jobCheckpoints(tenantId, jobId) },
      };
      return { tokenizer, payload };
    }
  }
}

/** Creates the job, its task and its first event in one D1 batch. */
export async function createJob(
  db: Db,
  config: Config,
  tenantId: string,
  body: JobCreate,
): Promise<JobRow> {
  const now = Date.now();
  const jobId = newId("job", now);
  if (body.webhookUrl) checkWebhookTarget(body.webhookUrl, config.allowLoopbackWebhooks);
  const { tokenizer, payload } = await taskPayload(db, tenantId, jobId, body);
  const { kind, webhookUrl, ...request } = body;
  const { tokenizer: _named, ...inputs } = request as Record<string, unknown>;
  const job: JobRow = {
    id: jobId,
    tenantId,
    kind,
    status: "queued",
    tokenizerId: tokenizer?.id ?? null,
    tokenizerHash: tokenizer?.manifestHash ?? null,
    inputs: JSON.stringify(inputs),
    webhookUrl: webhookUrl ?? null,
    webhookSecret: webhookUrl ? newSigningSecret() : null,
    progress: null,
    result: null,
    error: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  };
  await db.batch([
    db.insert(jobs).values(job),
    db.insert(tasks).values({
      id: newId("tsk", now),
      jobId,
      tenantId,
      kind,
      status: "queued",
      payload: JSON.stringify(payload),
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
  ]);
  return job;
}

export type JobFilter = {
  status?: JobStatus;
  kind?: JobRow["kind"];
  limit: number;
  cursor?: string;
};

export function encodeCursor(id: string): string {
  return btoa(JSON.stringify({ before: id })).replaceAll("=", "");
}

function decodeCursor(cursor: string): string {
  try {
    const { before } = JSON.parse(atob(cursor)) as { before: unknown };
    if (typeof before === "string") return before;
  } catch {}
  throw new HttpProblem(400, "invalid-cursor", "The cursor is not one this API gave out.");
}

/** A page of the tenant's jobs, newest first. */
export async function listJobs(db: Db, tenantId: string, filter: JobFilter) {
  const conditions = [eq(jobs.tenantId, tenantId)];
  if (filter.status) conditions.push(eq(jobs.status, filter.status));
  if (filter.kind) conditions.push(eq(jobs.kind, filter.kind));
  if (filter.cursor) conditions.push(lt(jobs.id, decodeCursor(filter.cursor)));
  const rows = await db
    .select({ job: jobs, attempts: tasks.attempt })
    .from(jobs)
    .innerJoin(tasks, eq(tasks.jobId, jobs.id))
    .where(and(...conditions))
    .orderBy(desc(jobs.id))
    .limit(filter.limit + 1);
  const page = rows.slice(0, filter.limit);
  return {
    jobs: page.map((r) => jobView(r.job, r.attempts)),
    nextCursor: rows.length > filter.limit ? encodeCursor(page[page.length - 1].job.id) : null,
  };
}

/**
 * Cancels an open job and its task; a worker holding the task learns it at its next heartbeat.
 * The call that cancels it sends its webhooks; a repeat changes nothing and sends nothing.
 */
export async function cancelJob(env: Env, db: Db, tenantId: string, id: string) {
  const job = await findJob(db, tenantId, id);
  if (job.status === "cancelled") return findJobView(db, tenantId, id);
  if (!OPEN_STATUSES.includes(job.status)) {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${job.status}.`);
  }
  const now = Date.now();
  const [cancelled] = await env.DB.batch([
    env.DB.prepare(
      "UPDATE jobs SET status = 'cancelled', finished_at = ?1, updated_at = ?1 WHERE id = ?2 AND status IN ('queued', 'running')",
    ).bind(now, id),
    eventIfChangedStatement(env.DB, job, "status", { status: "cancelled" }, now),
    env.DB.prepare(
      "UPDATE tasks SET status = 'cancelled', updated_at = ?1 WHERE job_id = ?2 AND status IN ('queued', 'leased') AND EXISTS (SELECT 1 FROM jobs WHERE id = ?2 AND status = 'cancelled')",
    ).bind(now, id),
  ]);
  if (cancelled.meta.changes > 0) await notifyJobEnded(env, id);
  const after = await findJobView(db, tenantId, id);
  if (after.status !== "cancelled") {
    throw new HttpProblem(409, "job-finished", `Job ${id} has already ${after.status}.`);
  }
  return after;
}
