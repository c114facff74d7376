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
import { findTokenizer, requireReady, type TokenizerRow } from "../tokenizers.ts";

export function tokenizerRef(row: TokenizerRow): TokenizerRef {
  return {
    id: row.id,
    manifestHash: row.manifestHash,
    manifestKey: bucketKeys.tokenizerManifest(row.manifestHash),
    filesPrefix: bucketKeys.tokenizerFile(row.manifestHash, ""),
  };
}

export async function readyTokenizer(
  db: Db,
  tenantId: string,
  idOrHash: string,
): Promise<TokenizerRow> {
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
  return requireReady(row);
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
  const dataset = await findDataset(db, tenantId, inputs.dataset).catch((error) => {
    if (error instanceof HttpProblem && error.status === 404) {
      throw new HttpProblem(422, "dataset-not-found", `No dataset ${inputs.dataset} to train on.`);
    }
    throw error;
  });
  return datasetEntries(env.BUCKET, db, config, dataset);
}

/** The tokenizer a train job's VAE comes from: the one named, or the deployment's default. */
export function baseTokenizer(config: Config, named: string | undefined): string {
  const base = named ?? config.defaultTokenizer;
  if (base === undefined) {
    throw new HttpProblem(
      422,
      "tokenizer-required",
      "Name the tokenizer whose VAE to train on (`baseTokenizer`): this deployment has no default tokenizer (DEFAULT_TOKENIZER).",
    );
  }
  return base;
}
