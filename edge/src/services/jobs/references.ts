/**
 * What a new job names, checked: its tokenizer (ready, and the tenant's to use), its images, a
 * train job's dataset and base tokenizer. Each missing one is a 4xx that says which.
 */
import {
  bucketKeys,
  type DatasetEntry,
  type ImageInput,
  type JobCreate,
  type TokenizerRef,
} from "@revq/shared";
import type { Config } from "../../config.ts";
import type { Db } from "../../db/client.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";

import { datasetEntries } from "../dataset-listing.ts";
import { findDataset } from "../datasets.ts";
import { tenantImages } from "../images.ts";
import { defaultTokenizer, readyTokenizer, type TokenizerRow } from "../tokenizers.ts";

export function tokenizerRef(row: TokenizerRow): TokenizerRef {
  return {
    id: row.id,
    manifestHash: row.manifestHash,
    manifestKey: bucketKeys.tokenizerManifest(row.manifestHash),
    filesPrefix: bucketKeys.tokenizerFile(row.manifestHash, ""),
  };
}

/** The tenant's images with these ids as encode inputs, in the order given. */
export async function imageInputs(db: Db, tenantId: string, ids: string[]): Promise<ImageInput[]> {
  return (await tenantImages(db, tenantId, ids)).map((row) => ({
    imageId: row.id,
    bucketKey: row.bucketKey,
    format: row.format,
    width: row.width,
    height: row.height,
  }));
}

/** The images a train job names (inline, or a dataset of the tenant's), in training order. */
export async function trainingEntries(
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
  return namedDatasetEntries(env, db, config, tenantId, inputs.dataset, "train on");
}

/** The images of the tenant's dataset a job names, as they are now (422 when it has none such). */
export async function namedDatasetEntries(
  env: Env,
  db: Db,
  config: Config,
  tenantId: string,
  datasetId: string,
  purpose: "train on" | "encode",
): Promise<DatasetEntry[]> {
  const dataset = await findDataset(db, tenantId, datasetId).catch((error) => {
    if (error instanceof HttpProblem && error.status === 404) {
      throw new HttpProblem(422, "dataset-not-found", `No dataset ${datasetId} to ${purpose}.`);
    }
    throw error;
  });
  return datasetEntries(env.BUCKET, db, config, dataset);
}

/**
 * The ready tokenizer a job uses: the one it names (a train job's base), else the tenant's
 * default, else the deployment's; with none of them, 422 tokenizer-required.
 */
export async function jobTokenizer(
  db: Db,
  config: Config,
  tenantId: string,
  named: string | undefined,
  field: "tokenizer" | "baseTokenizer",
): Promise<TokenizerRow> {
  const reference = named ?? (await defaultTokenizer(db, config, tenantId))?.reference;
  if (reference === undefined) {
    throw new HttpProblem(
      422,
      "tokenizer-required",
      `Name the tokenizer (\`${field}\`): neither this tenant (PUT /v1/tenant/default-tokenizer) nor this deployment (DEFAULT_TOKENIZER) has a default.`,
    );
  }
  return readyTokenizer(db, tenantId, reference);
}
