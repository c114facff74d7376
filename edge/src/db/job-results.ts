/**
 * What a succeeded job's `result` column holds, by job kind: written once, by the edge's check of
 * the worker's outputs (services/queue/task-results.ts), and read by job views, token and image
 * downloads and reconstruct jobs through `resultOf`.
 */
import type { JobKind, TokenizerEvaluation, TokenShard } from "@revq/shared";

export type EncodeResult = {
  tokens: {
    bytes: number;
    recordCount: number;
    tokensPerRecord: number;
    codesPerGroup: number;
    groups: number;
    bitsPerToken: number;
    tokenizerHash: string;
    /**
     * The stored object's R2 ETag: the download's strong ETag, known without touching R2. A
     * dataset encode job's, whose stream is made from its shards, is the SHA-256 of theirs.
     */
    etag: string;
  };
  /** A dataset encode job's: what it froze, and its token shards in record order. */
  dataset?: { id: string; listingHash: string; shardSize: number };
  shards?: TokenShard[];
};

export type ReconstructResult = {
  /** Image i is the PNG of record i; its R2 ETag is the download's strong ETag. */
  images: { index: number; bytes: number; etag: string }[];
  /** When the job asked for them: the latents of every record, one .npy. */
  latents?: { bytes: number; etag: string };
};

export type ExtractResult = {
  /** The shards the job was given, each as stored under the dataset's latents prefix. */
  shards: { index: number; bytes: number; etag: string }[];
};

export type TrainResult = {
  tokenizer: { id: string; manifestHash: string };
  /** The manifest's, copied so that the job's view shows it without reading the tokenizer. */
  evaluation?: TokenizerEvaluation;
};

export type JobResults = {
  encode: EncodeResult;
  reconstruct: ReconstructResult;
  extract: ExtractResult;
  train: TrainResult;
};
export type JobResult = JobResults[JobKind];

/**
 * The result of a job of `kind`, or null when it has none (not that kind, not succeeded). The
 * one place a stored result meets its type: the kind decided what was written.
 */
export function resultOf<K extends JobKind>(
  job: { kind: JobKind; result: JobResult | null },
  kind: K,
): JobResults[K] | null {
  return job.kind === kind ? (job.result as JobResults[K] | null) : null;
}
