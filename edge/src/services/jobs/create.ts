/**
 * Creating a job: its row, its task and its first event (and those of a train job's extract
 * jobs) in one D1 batch, so that a job never exists without its task.
 */
import type { JobCreate, TaskPayload } from "@revq/shared";
import type { Config } from "../../config.ts";
import type { Db } from "../../db/client.ts";
import { jobEvents, jobs, tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";

import { newId } from "../ids.ts";
import { newSigningSecret, sealSecret } from "../webhooks/secret.ts";
import { checkWebhookTarget } from "../webhooks/target.ts";
import { taskPayload } from "./payload.ts";
import type { JobRow } from "./read.ts";

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
      data: { status: "queued" },
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
  const { kind, webhookUrl } = body;
  // The row keeps the request as accepted, less what has columns of its own (jobs/view.ts).
  const inputs = {
    inputs: body.inputs,
    ...(body.kind === "train" ? { parameters: body.parameters } : {}),
  };
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
