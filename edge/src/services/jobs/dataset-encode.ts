/**
 * A dataset encode job: its dataset's listing frozen at creation and cut into token shards, one
 * shard job (an encode job whose parent it is) for each shard not in the bucket yet. The job has
 * no task of its own: each time one of its shard jobs ends, `settleDatasetJob` moves it on
 * (progress), fails it (a shard failed for good or was cancelled; the others are cancelled) or
 * completes it with the shards' manifest once every shard is there.
 */
import {
  bucketKeys,
  type EncodePayload,
  isFinished,
  latentShardCount,
  MAX_TOKEN_SHARDS,
  makeTokenStreamHeader,
  sha256Hex,
  shardLength,
  type TaskPayload,
  type TokenShard,
  type TokenStreamParams,
  tokenShardName,
  tokenStreamByteLength,
} from "@revq/shared";
import { and, eq, inArray, not, notExists, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import type * as z from "zod";
import type { Config } from "../../config.ts";
import { runTransition, runTransitions } from "../../db/batch.ts";
import { type Db, database } from "../../db/client.ts";
import type { EncodeResult } from "../../db/job-results.ts";
import { jobs } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";
import { freezeDataset } from "../dataset-listing.ts";
import { manifestOf, type TokenizerRow } from "../tokenizers.ts";
import { endingOutbox, sendDeliveries } from "../webhooks/outbox.ts";
import { childCancelSteps } from "./cancel.ts";
import { eventIfChanged } from "./events.ts";
import type { JobRow } from "./read.ts";
import { namedDatasetEntries, tokenizerRef } from "./references.ts";
import { OPEN_STATUSES, openJobUpdate } from "./status.ts";

/**
 * What a dataset encode job froze, kept in its row beside the request (`frozen`): the listing,
 * the shard size, the prefix of its token shards (listing, tokenizer and shard size) and the
 * tokenizer's stream layout, so that a tokenizer deleted meanwhile changes nothing.
 */
export type FrozenDataset = {
  dataset: string;
  listing: string;
  listingHash: string;
  count: number;
  shardSize: number;
  shards: string;
  layout: TokenStreamParams;
};

export type DatasetInputs = { dataset: string; shardSize: number };

export function shardRecords(frozen: FrozenDataset, index: number): number {
  return shardLength(frozen.count, frozen.shardSize, index);
}

export function shardCountOf(frozen: FrozenDataset): number {
  return latentShardCount(frozen.count, frozen.shardSize);
}

/** A token stream's length in the frozen layout: the size a whole shard of `records` has. */
function streamBytes(frozen: FrozenDataset, records: number): number {
  return tokenStreamByteLength(makeTokenStreamHeader(frozen.layout, records));
}

/** The shards under the job's prefix, listed (R2 lists size and ETag), by shard name. */
async function storedShards(bucket: R2Bucket, prefix: string): Promise<Map<string, R2Object>> {
  const found = new Map<string, R2Object>();
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, limit: 1000 });
    for (const object of page.objects) found.set(object.key.slice(prefix.length), object);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return found;
}

/**
 * Freezes the dataset and finds the shards to make: those not in the bucket whole (a shard of
 * another size than its records imply is made again). Refused before anything is written when it
 * would take more than MAX_TOKEN_SHARDS shards.
 */
export async function planDatasetEncode(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  tokenizer: TokenizerRow,
  inputs: DatasetInputs,
): Promise<{ frozen: FrozenDataset; missing: number[] }> {
  const entries = await namedDatasetEntries(env, db, config, tenantId, inputs.dataset, "encode");
  const count = latentShardCount(entries.length, inputs.shardSize);
  if (count > MAX_TOKEN_SHARDS) {
    throw new HttpProblem(
      422,
      "too-many-shards",
      `Dataset ${inputs.dataset}'s ${entries.length} images make ${count} shards of ${inputs.shardSize}; a job has at most ${MAX_TOKEN_SHARDS}: choose a shardSize of at least ${Math.ceil(entries.length / MAX_TOKEN_SHARDS)}.`,
    );
  }
  const { vae, quantizer } = manifestOf(tokenizer);
  const ref = await freezeDataset(env.BUCKET, tenantId, entries, vae, config);
  const frozen: FrozenDataset = {
    dataset: inputs.dataset,
    listing: ref.listing,
    listingHash: ref.listingHash,
    count: ref.count,
    shardSize: inputs.shardSize,
    shards: bucketKeys.tokenShards(
      tenantId,
      ref.listingHash,
      tokenizer.manifestHash,
      inputs.shardSize,
    ),
    layout: {
      tokenizerHash: tokenizer.manifestHash,
      tokensPerRecord: quantizer.tokens,
      codesPerGroup: quantizer.codesPerGroup,
      groups: quantizer.groups,
    },
  };
  const stored = await storedShards(env.BUCKET, frozen.shards);
  const missing = Array.from({ length: count }, (_, i) => i).filter(
    (i) => stored.get(tokenShardName(i))?.size !== streamBytes(frozen, shardRecords(frozen, i)),
  );
  return { frozen, missing };
}

/** The task of shard `index`'s job: the shard of the listing, to its content-addressed key. */
export function shardPayload(
  frozen: FrozenDataset,
  index: number,
  tokenizer: TokenizerRow,
): z.infer<typeof EncodePayload> {
  const { listing, listingHash, count, shardSize } = frozen;
  return {
    kind: "encode",
    tokenizer: tokenizerRef(tokenizer),
    images: [],
    shard: { listing, listingHash, count, shardSize, index },
    output: { tokens: frozen.shards + tokenShardName(index) },
  };
}

/** A succeeded dataset encode job's result: what it froze and its shards. */
export type DatasetResult = EncodeResult & Required<Pick<EncodeResult, "dataset" | "shards">>;

export function isDatasetResult(result: EncodeResult): result is DatasetResult {
  return result.dataset !== undefined && result.shards !== undefined;
}

/** Where shard `index` of a succeeded dataset encode job is, from its result alone. */
export function shardKey(tenantId: string, result: DatasetResult, index: number): string {
  const { listingHash, shardSize } = result.dataset;
  const prefix = bucketKeys.tokenShards(
    tenantId,
    listingHash,
    result.tokens.tokenizerHash,
    shardSize,
  );
  return prefix + tokenShardName(index);
}

export function frozenOf(job: JobRow): FrozenDataset | null {
  return (job.inputs as { frozen?: FrozenDataset }).frozen ?? null;
}

/** The shards as stored now, each checked whole; else what is wrong with the first that is not. */
async function completeShards(
  bucket: R2Bucket,
  frozen: FrozenDataset,
): Promise<TokenShard[] | string> {
  const stored = await storedShards(bucket, frozen.shards);
  const shards: TokenShard[] = [];
  for (let index = 0; index < shardCountOf(frozen); index++) {
    const object = stored.get(tokenShardName(index));
    const records = shardRecords(frozen, index);
    const bytes = streamBytes(frozen, records);
    if (object?.size !== bytes) {
      return `Shard ${index} is ${object ? `${object.size} bytes, not ${bytes}` : "missing"}.`;
    }
    const firstRecord = index * frozen.shardSize;
    shards.push({ index, firstRecord, records, bytes: object.size, etag: object.etag });
  }
  return shards;
}

/** The job's result: its whole stream's header fields, the shards and what it froze. */
async function datasetResult(frozen: FrozenDataset, shards: TokenShard[]): Promise<EncodeResult> {
  const header = makeTokenStreamHeader(frozen.layout, frozen.count);
  return {
    tokens: {
      bytes: tokenStreamByteLength(header),
      recordCount: header.recordCount,
      tokensPerRecord: header.tokensPerRecord,
      codesPerGroup: header.codesPerGroup,
      groups: header.groups,
      bitsPerToken: header.bitsPerToken,
      tokenizerHash: header.tokenizerHash,
      etag: await sha256Hex(shards.map((s) => s.etag).join(",")),
    },
    dataset: { id: frozen.dataset, listingHash: frozen.listingHash, shardSize: frozen.shardSize },
    shards,
  };
}

/** Every shard job of the parent, earlier in the batch or not, has succeeded. */
function allShardsSucceeded(db: Db, parentId: string) {
  const child = alias(jobs, "shard_job");
  return notExists(
    db
      .select({ one: sql`1` })
      .from(child)
      .where(and(eq(child.parentJobId, parentId), not(eq(child.status, "succeeded")))),
  );
}

/**
 * Moves a dataset encode job on after one of its shard jobs ended (or at once, when it has none):
 * on to its progress, to failed, or to succeeded. Every step is guarded on the job still being
 * open, so concurrent settlements end it once.
 */
export async function settleDatasetJob(env: Env, parent: JobRow) {
  const frozen = frozenOf(parent);
  if (frozen === null || isFinished(parent.status)) return;
  const db = database(env);
  const children = await db
    .select({ id: jobs.id, status: jobs.status, error: jobs.error, inputs: jobs.inputs })
    .from(jobs)
    .where(eq(jobs.parentJobId, parent.id));
  const now = Date.now();
  const shardOf = (child: (typeof children)[number]) =>
    (child.inputs as { shards: number[] }).shards[0];
  const ended = children.find((c) => c.status === "failed" || c.status === "cancelled");
  if (ended) {
    const why = ended.status === "cancelled" ? "was cancelled" : `failed: ${ended.error?.message}`;
    const error = {
      code: "shard-failed",
      message: `Shard ${shardOf(ended)} (job ${ended.id}) ${why}`,
    };
    const others = children.filter((c) => OPEN_STATUSES.includes(c.status)).map((c) => c.id);
    await endParent(env, db, parent, { status: "failed", error }, now, others);
    return;
  }
  const open = children.filter((c) => OPEN_STATUSES.includes(c.status));
  if (open.length > 0) {
    const openShards = new Set(open.map(shardOf));
    const total = shardCountOf(frozen);
    let done = 0;
    for (let i = 0; i < total; i++) if (!openShards.has(i)) done += shardRecords(frozen, i);
    const progress = {
      done,
      total: frozen.count,
      stage: `${total - open.length} of ${total} shards`,
    };
    // Running from its first shard's end, with that one status event; then its progress.
    await runTransition(db, {
      started: openJobUpdate(
        db,
        parent.id,
        { status: "running", updatedAt: now },
        eq(jobs.status, "queued"),
      ),
      event: eventIfChanged(db, parent, "status", { status: "running" }, now),
      progress: openJobUpdate(db, parent.id, { progress, updatedAt: now }),
    });
    return;
  }
  const shards = await completeShards(env.BUCKET, frozen);
  if (typeof shards === "string") {
    const error = { code: "shard-missing", message: shards };
    await endParent(env, db, parent, { status: "failed", error }, now, []);
    return;
  }
  const result = await datasetResult(frozen, shards);
  const progress = { done: frozen.count, total: frozen.count, stage: "done" };
  await endParent(env, db, parent, { status: "succeeded", result, progress }, now, []);
}

type ParentEnding =
  | { status: "failed"; error: { code: string; message: string } }
  | { status: "succeeded"; result: EncodeResult; progress: NonNullable<JobRow["progress"]> };

/** Ends the parent (once), with its event, its deliveries and the cancel of open shard jobs. */
async function endParent(
  env: Env,
  db: Db,
  parent: JobRow,
  ending: ParentEnding,
  now: number,
  openChildren: string[],
) {
  const outbox = await endingOutbox(env, parent.id, ending, now);
  const guard = ending.status === "succeeded" ? allShardsSucceeded(db, parent.id) : undefined;
  const changed = await runTransition(db, {
    job: openJobUpdate(db, parent.id, { ...ending, finishedAt: now, updatedAt: now }, guard),
    event: eventIfChanged(db, parent, "status", { status: ending.status }, now),
    deliveries: outbox.deliveries,
  });
  if (changed.job === 0) return;
  await sendDeliveries(env, outbox.deliveryIds);
  if (openChildren.length === 0) return;
  const rows = await db
    .select({ id: jobs.id, tenantId: jobs.tenantId })
    .from(jobs)
    .where(and(inArray(jobs.id, openChildren), inArray(jobs.status, OPEN_STATUSES)));
  await runTransitions(
    db,
    rows.map((row) => childCancelSteps(db, row, now, parent.id, "parent-failed")),
  );
}

/** Whether a task is a shard job's (read from its row, without another query). */
export function isShardTask(task: { payload: TaskPayload }): boolean {
  return task.payload.kind === "encode" && task.payload.shard !== undefined;
}

/** After a shard job ended: its dataset encode job moves on. */
export async function settleParentOf(env: Env, jobId: string) {
  const db = database(env);
  const parent = alias(jobs, "parent_job");
  const [row] = await db
    .select({ parent })
    .from(jobs)
    .innerJoin(parent, eq(parent.id, jobs.parentJobId))
    .where(and(eq(jobs.id, jobId), eq(parent.kind, "encode")))
    .limit(1);
  if (row) await settleDatasetJob(env, row.parent);
}
