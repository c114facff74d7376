/**
 * Creating a job: its row, its task and its first event (and those of its child jobs: a train
 * job's extract jobs, a dataset encode job's shard jobs) in one D1 batch, so that a job never
 * exists without its task, nor a dataset encode job without its shard jobs.
 */
import type { JobCreate, TaskPayload } from "@revq/shared";
import type { Config } from "../../config.ts";
import type { Db } from "../../db/client.ts";
import { jobEvents, jobs, tasks } from "../../db/schema.ts";
import type { Env } from "../../env.ts";

import { newId } from "../ids.ts";
import { newSigningSecret, sealSecret } from "../webhooks/secret.ts";
import { checkWebhookTarget } from "../webhooks/target.ts";
import { settleDatasetJob } from "./dataset-encode.ts";
import { taskPayload } from "./payload.ts";
import type { JobRow } from "./read.ts";

/** The inserts of one job: its row, its task (a dataset encode job has none) and its first event. */
function jobStatements(
  db: Db,
  config: Config,
  job: JobRow,
  taskId: string,
  payload: TaskPayload | null,
) {
  const { id: jobId, tenantId, kind, createdAt: now } = job;
  const task: typeof tasks.$inferInsert | null = payload && {
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
  };
  return [
    db.insert(jobs).values(job),
    ...(task ? [db.insert(tasks).values(task)] : []),
    db.insert(jobEvents).values({
      jobId,
      tenantId,
      type: "status",
      data: { status: "queued" },
      createdAt: now,
    }),
  ];
}

/**
 * Creates the job, its task and its first event, and those of its child jobs, in one D1 batch.
 * With a webhookUrl, also its signing secret: the row keeps it encrypted, the caller gets it in
 * clear to show once. A dataset encode job whose shards were all made before succeeds at once.
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
  const { tokenizer, payload, children, frozen } = await taskPayload(
    env,
    db,
    config,
    tenantId,
    jobId,
    body,
  );
  const { kind, webhookUrl } = body;
  // The row keeps the request as accepted, less what has columns of its own (jobs/view.ts), and
  // what a dataset encode job froze.
  const inputs = {
    inputs: body.inputs,
    ...(body.kind === "train" ? { parameters: body.parameters } : {}),
    ...(frozen ? { frozen } : {}),
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
  // The queue leases by (available_at, id): sorted task ids of one instant put the child tasks
  // ahead of their parent's, so that free workers take them first, in shard order; sorted job
  // ids list the child jobs in that order too.
  const sortedIds = (prefix: "job" | "tsk", n: number) =>
    Array.from({ length: n }, () => newId(prefix, now)).sort();
  const taskIds = sortedIds("tsk", children.length + 1);
  const childJobIds = sortedIds("job", children.length);
  const childJobs = children.map((child, i) => {
    const childJob = row({
      id: childJobIds[i],
      kind: child.payload.kind,
      inputs: { shards: child.shards },
      parentJobId: jobId,
    });
    return jobStatements(db, config, childJob, taskIds[i], child.payload);
  });
  const [first, ...rest] = [
    ...childJobs.flat(),
    ...jobStatements(db, config, job, taskIds[children.length], payload),
  ];
  await db.batch([first, ...rest]);
  if (frozen && children.length === 0) await settleDatasetJob(env, job);
  return { job, webhookSecret };
}
