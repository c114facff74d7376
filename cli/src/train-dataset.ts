/**
 * The dataset `revq train DIR` trains on, settled before anything is uploaded: enough images for
 * one batch (the worker's rule, from @revq/shared), and a dataset of the same name that an
 * earlier run filled with the first of these images is resumed, not uploaded again.
 */
import {
  Dataset,
  DatasetList,
  DEFAULT_TRAIN_BATCH_SIZE,
  defaultHeldOut,
  minimumTrainImages,
} from "@revq/shared";
import type { Api } from "./api.ts";
import { type Added, addToDataset } from "./dataset-upload.ts";
import { usageError } from "./errors.ts";
import type { BatchLimits, LocalImage } from "./images.ts";
import type { Output } from "./output.ts";
import { collectPages } from "./pages.ts";

/** The datasets read to find one by name: more than any tenant keeps by hand. */
const MAX_DATASETS_READ = 10_000;

/** Refuses, as the worker would after the upload, a dataset whose training part makes no batch. */
export function checkEnoughImages(count: number, parameters: Record<string, unknown>): void {
  const batchSize =
    typeof parameters.batchSize === "number" ? parameters.batchSize : DEFAULT_TRAIN_BATCH_SIZE;
  const heldOut = defaultHeldOut(count);
  if (count - heldOut >= batchSize) return;
  const largest = count - heldOut;
  throw usageError(
    `${count} image${count === 1 ? "" : "s"} (${heldOut} held out for validation) do not make one batch of ${batchSize}`,
    `train on at least ${minimumTrainImages(batchSize)} images, or pass --batch-size ${largest} or less`,
  );
}

export type DatasetPlan = {
  /** An existing dataset to resume, or undefined to create one. */
  dataset: Dataset | undefined;
  /** How many of the images it holds already (they come first, in order). */
  held: number;
};

/**
 * The tenant's upload dataset named `name` whose images are the first of `images` (by count and
 * bytes, the totals the edge keeps), newest first. One of that name holding anything else is
 * refused: a second dataset of the same name is how the last run's confusion started.
 */
export async function findResumable(
  api: Api,
  name: string,
  images: LocalImage[],
): Promise<DatasetPlan> {
  const all = await collectPages(
    api,
    "/v1/datasets",
    DatasetList,
    (p) => p.datasets,
    MAX_DATASETS_READ,
  );
  const named = all.filter((d) => d.name === name);
  if (named.length === 0) return { dataset: undefined, held: 0 };
  const resumable = named.find((d) => {
    const held = d.imageCount ?? -1;
    if (d.source !== "upload" || held > images.length) return false;
    return images.slice(0, held).reduce((sum, image) => sum + image.bytes, 0) === d.bytes;
  });
  if (resumable) return { dataset: resumable, held: resumable.imageCount ?? 0 };
  const other = named[0];
  throw usageError(
    `the dataset named ${JSON.stringify(name)} (${other.id}) holds other images than the first of these`,
    `name a new one with --dataset-name, train on that one with --dataset ${other.id}, or delete it: revq datasets delete ${other.id}`,
  );
}

/** The dataset to train on: resumed or created, then given the images it lacks. */
export async function trainingDataset(
  api: Api,
  out: Output,
  name: string,
  images: LocalImage[],
  options: { limits: BatchLimits; resume: (id: string, done: number) => string },
): Promise<Dataset> {
  const plan = await findResumable(api, name, images);
  const dataset =
    plan.dataset ?? (await api.json("POST", "/v1/datasets", Dataset, { body: { name } }));
  const label = `dataset ${dataset.id} ${JSON.stringify(name)}`;
  if (plan.held === images.length) {
    out.note(
      `${label} holds all ${images.length} images already (an earlier run's): nothing to upload`,
    );
    return dataset;
  }
  out.note(
    plan.held === 0
      ? `${label}: adding ${images.length} images`
      : `${label} holds the first ${plan.held} of the ${images.length} images (an earlier run's): adding the other ${images.length - plan.held}`,
  );
  const added: Added = await addToDataset(api, out, dataset.id, images.slice(plan.held), {
    limits: options.limits,
    skip: plan.held,
    resume: (done) => options.resume(dataset.id, done),
  });
  return added.dataset;
}
