/**
 * What a succeeded dataset encode job offers besides its whole stream: the manifest of its
 * shards, the index from record to image, and each shard as a stored token stream of its own.
 */
import {
  bucketKeys,
  FormatError,
  parseDatasetListing,
  type RecordIndex,
  type TokenShardManifest,
} from "@revq/shared";
import { HttpProblem } from "../../problem.ts";
import { type DatasetResult, isDatasetResult, shardKey } from "./dataset-encode.ts";
import { succeededResult } from "./outputs.ts";
import type { JobRow } from "./read.ts";
import type { StoredTokens } from "./token-download.ts";

/** The job's result, for a succeeded dataset encode job (404 no-shards for any other job). */
export function datasetResultOf(job: JobRow): DatasetResult {
  const result = succeededResult(job, "encode", "tokens");
  if (!isDatasetResult(result)) {
    throw new HttpProblem(
      404,
      "no-shards",
      `Job ${job.id} encoded images it named, not a dataset: its one token stream is at /v1/jobs/${job.id}/tokens.`,
    );
  }
  return result;
}

export function shardManifest(job: JobRow): TokenShardManifest {
  const { tokens, dataset, shards } = datasetResultOf(job);
  return {
    format: "revq.token-shards/v1",
    job: job.id,
    tokenizerHash: tokens.tokenizerHash,
    dataset: dataset.id,
    listingHash: dataset.listingHash,
    recordCount: tokens.recordCount,
    shardSize: dataset.shardSize,
    tokensPerRecord: tokens.tokensPerRecord,
    codesPerGroup: tokens.codesPerGroup,
    groups: tokens.groups,
    bitsPerToken: tokens.bitsPerToken,
    shards,
  };
}

/**
 * Each record's image, from the listing the job froze (it stays in the bucket, content-addressed,
 * whatever happened to the dataset since): an upload's image id, or a file's path under the
 * tenant's files.
 */
export async function recordIndex(bucket: R2Bucket, job: JobRow): Promise<RecordIndex> {
  const { dataset } = datasetResultOf(job);
  const key = bucketKeys.datasetListing(job.tenantId, dataset.listingHash);
  const object = await bucket.get(key);
  if (!object) {
    throw new HttpProblem(500, "object-missing", `The frozen listing of job ${job.id} is missing.`);
  }
  let images: { key: string }[];
  try {
    const bytes = new Uint8Array(await object.arrayBuffer());
    images = (await parseDatasetListing(bytes, dataset.listingHash)).images;
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    throw new HttpProblem(
      500,
      "object-missing",
      `The frozen listing of job ${job.id} is unusable.`,
    );
  }
  const uploads = bucketKeys.images(job.tenantId);
  const files = bucketKeys.allTenantFiles(job.tenantId);
  return {
    format: "revq.record-index/v1",
    job: job.id,
    dataset: dataset.id,
    records: images.map(({ key: imageKey }, record) => ({
      record,
      shard: Math.floor(record / dataset.shardSize),
      ...(imageKey.startsWith(uploads)
        ? { imageId: imageKey.slice(uploads.length) }
        : { file: imageKey.slice(files.length) }),
    })),
  };
}

/** Shard `index` of the job as a token stream to serve (404 shard-not-found past its last). */
export function shardTokens(job: JobRow, index: string): StoredTokens {
  const result = datasetResultOf(job);
  const shard = /^(0|[1-9][0-9]{0,5})$/.test(index) ? result.shards[Number(index)] : undefined;
  if (!shard) {
    throw new HttpProblem(
      404,
      "shard-not-found",
      `Job ${job.id} has shards 0 to ${result.shards.length - 1}; there is no shard ${JSON.stringify(index)}.`,
    );
  }
  return {
    key: shardKey(job.tenantId, result, shard.index),
    tokens: { ...result.tokens, bytes: shard.bytes, recordCount: shard.records, etag: shard.etag },
    name: `${job.id}-shard-${shard.index}`,
  };
}
