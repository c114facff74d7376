/**
 * A dataset to tokens on the edge: one dataset encode job (its shard jobs run on any number of
 * workers), followed with one progress bar across its shards, then its shards, shard manifest and
 * record index written to a folder. Each shard is checked with the shared format code before it
 * is written: its CRCs, its records and tokenizer, and the bytes the manifest says.
 */

import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  Job,
  RecordIndex,
  readTokenStream,
  type Tokenizer,
  TokenShardManifest,
  tokenShardName,
} from "@revq/shared";
import type { Api } from "./api.ts";
import { CliError, EXIT } from "./errors.ts";
import { requireSucceeded, waitForJob } from "./jobs.ts";
import { type Output, writeOutput } from "./output.ts";

/** The files of a dataset's tokens in its output folder (clients/python reads the same). */
export const DATASET_FILES = { manifest: "manifest.json", records: "records.json" } as const;

export async function encodeDataset(
  api: Api,
  out: Output,
  datasetId: string,
  tokenizer: Tokenizer,
  shardSize: number | undefined,
): Promise<Job> {
  const created = await api.json("POST", "/v1/jobs", Job, {
    body: {
      kind: "encode",
      tokenizer: tokenizer.id,
      inputs: { dataset: datasetId, ...(shardSize === undefined ? {} : { shardSize }) },
    },
    idempotencyKey: randomUUID(),
  });
  const shards = created.shardJobs?.length ?? 0;
  out.note(
    `encode job ${created.id} queued: dataset ${datasetId}, ${shards} shard${shards === 1 ? "" : "s"} to encode (${tokenizer.name})`,
  );
  const encoding = out.progress("encode  ");
  const job = await waitForJob(api, created.id, encoding);
  encoding.end();
  requireSucceeded(job);
  return job;
}

function badShard(index: number, why: string): CliError {
  return new CliError(
    `shard ${index} downloaded is not what the job made: ${why}`,
    EXIT.unavailable,
  );
}

/** Downloads the job's manifest, index and every shard into `dir`: what it wrote, and the bytes of the shards. */
export async function downloadDataset(
  api: Api,
  out: Output,
  jobId: string,
  dir: string,
): Promise<{ manifest: TokenShardManifest; records: RecordIndex; bytes: number }> {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const manifest = await api.json("GET", `${path}/shards`, TokenShardManifest);
  const records = await api.json("GET", `${path}/records`, RecordIndex);
  await mkdir(dir, { recursive: true });
  const bar = out.progress("download");
  let bytes = 0;
  let done = 0;
  for (const shard of manifest.shards) {
    const data = await api.bytes("GET", `${path}/shards/${shard.index}/tokens`);
    if (data.length !== shard.bytes) {
      throw badShard(shard.index, `${data.length} bytes, not ${shard.bytes}`);
    }
    let header: ReturnType<typeof readTokenStream>["header"];
    try {
      header = readTokenStream(data).header;
    } catch (error) {
      throw badShard(shard.index, (error as Error).message);
    }
    if (header.recordCount !== shard.records || header.tokenizerHash !== manifest.tokenizerHash) {
      throw badShard(shard.index, `${header.recordCount} records by ${header.tokenizerHash}`);
    }
    await writeOutput(join(dir, tokenShardName(shard.index)), data);
    bytes += data.length;
    done += shard.records;
    bar.update(done, manifest.recordCount, `shard ${shard.index + 1} of ${manifest.shards.length}`);
  }
  bar.end();
  const asJson = (value: unknown) =>
    new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
  await writeOutput(join(dir, DATASET_FILES.manifest), asJson(manifest));
  await writeOutput(join(dir, DATASET_FILES.records), asJson(records));
  return { manifest, records, bytes };
}
