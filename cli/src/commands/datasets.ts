/** revq datasets: named sets of images to train on; create, fill from folders, list, delete. */
import { Dataset, DatasetList } from "@revq/shared";
import { positiveInt, stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { ADD_OPTIONS, addHelp, addLimits, addToDataset, resumeCommand } from "../dataset-upload.ts";
import { usageError } from "../errors.ts";
import { collectImages } from "../images.ts";
import { formatBytes } from "../output.ts";
import { collectPages } from "../pages.ts";

const help = `usage: revq datasets [list] [--limit N]
       revq datasets create NAME [--prefix P]
       revq datasets show ID
       revq datasets add ID FILES|DIR... [--max-images N] [--max-bytes N] [--skip N]
       revq datasets delete ID

A dataset is a named set of images at the edge to train on (revq train --dataset ID;
docs/api.md, "Datasets"). An upload dataset holds the images added to it; a prefix dataset the
image files under a prefix of your files in the bucket, put there through the S3 API.

  list       the newest datasets first (--limit, default 20)
  create     a new, empty upload dataset, or with --prefix a prefix dataset
  show       one dataset and its totals
  add        adds images (folders are searched for .png, .jpg, .jpeg and .webp) as tar
             archives, in batches under the edge's limits per request, a line per batch. The
             edge adds each batch whole or refuses it whole: after a bad file, the dataset
             holds the batches before it, and --skip adds the rest
  delete     deletes a dataset (its images, and jobs already made from it, stay)

  --prefix <p>        create: the files under tenants/{tenant}/files/<p> (end a folder with /)
  --limit <n>         list: at most this many [20]
${addHelp("add")}  --skip <n>          add: leave out the first n images found (an earlier add's)
${COMMON_HELP}`;

export const datasets: Command = {
  name: "datasets",
  summary: "named sets of images to train on: create, add folders to, list, show, delete",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      prefix: { type: "string" },
      limit: { type: "string" },
      skip: { type: "string" },
      ...ADD_OPTIONS,
    });
    if (!s) return;
    const [action = "list", ...args] = s.parsed.positionals;
    const one = (what: string) => {
      if (args.length !== 1) throw usageError(`revq datasets ${action} takes ${what}`);
      return args[0];
    };
    const path = (id: string) => `/v1/datasets/${encodeURIComponent(id)}`;
    switch (action) {
      case "list": {
        if (args.length > 0) throw usageError(`unexpected ${args.join(" ")}`);
        const limit = positiveInt(s.parsed, "limit") ?? 20;
        const found = await collectPages(
          s.api(),
          "/v1/datasets",
          DatasetList,
          (p) => p.datasets,
          limit,
        );
        s.out.result({ datasets: found });
        if (found.length === 0) s.out.line("no datasets");
        for (const dataset of found) s.out.line(datasetLine(dataset));
        return;
      }
      case "create": {
        const name = one("a name");
        const prefix = stringOption(s.parsed, "prefix");
        const created = await s.api().json("POST", "/v1/datasets", Dataset, {
          body: { name, ...(prefix === undefined ? {} : { prefix }) },
        });
        s.out.result(created);
        s.out.line(datasetLine(created));
        s.out.line(
          created.source === "upload"
            ? `next: revq datasets add ${created.id} FOLDER`
            : `train on it: revq train --dataset ${created.id}`,
        );
        return;
      }
      case "show": {
        const dataset = await s.api().json("GET", path(one("a dataset id")), Dataset);
        s.out.result(dataset);
        s.out.line(datasetDetails(dataset));
        return;
      }
      case "delete": {
        const id = one("a dataset id");
        await s.api().call("DELETE", path(id));
        s.out.result({ deleted: id });
        s.out.line(`deleted ${id}`);
        return;
      }
      case "add": {
        const [id, ...paths] = args;
        if (!id) throw usageError("revq datasets add needs a dataset id and images");
        const limits = addLimits(s.parsed);
        const skip = positiveInt(s.parsed, "skip") ?? 0;
        const images = await collectImages(paths, s.out);
        if (skip >= images.length) {
          throw usageError(`--skip ${skip} leaves none of the ${images.length} images`);
        }
        const api = s.api();
        // Read first: a wrong id or a prefix dataset is refused before any file is read.
        const before = await api.json("GET", path(id), Dataset);
        if (before.source !== "upload") {
          throw usageError(
            `${id} is a prefix dataset: its images are the files under ${before.prefix}`,
            "put files there through the S3 API, or create an upload dataset",
          );
        }
        const added = await addToDataset(api, s.out, id, images.slice(skip), {
          limits,
          skip,
          resume: (done) => resumeCommand(id, paths, s.parsed, done),
        });
        const n = added.images.length;
        s.out.result({
          dataset: added.dataset,
          added: n,
          requests: added.requests,
          images: added.images,
        });
        s.out.line(
          `added ${n} image${n === 1 ? "" : "s"} in ${added.requests} request${added.requests === 1 ? "" : "s"}: ${datasetLine(added.dataset)}`,
        );
        return;
      }
      default:
        throw usageError(`unknown action ${JSON.stringify(action)}`, "see revq datasets --help");
    }
  },
};

/** What a dataset holds, in a few words. */
export function datasetContents(dataset: Dataset): string {
  if (dataset.source === "prefix") return `the files under ${dataset.prefix}`;
  const n = dataset.imageCount ?? 0;
  return `${n} image${n === 1 ? "" : "s"}, ${formatBytes(dataset.bytes ?? 0)}`;
}

function datasetLine(dataset: Dataset): string {
  return `${dataset.id}  ${dataset.name}  ${datasetContents(dataset)}`;
}

function datasetDetails(dataset: Dataset): string {
  const lines = [
    `${dataset.id} (${dataset.source}): ${dataset.name}`,
    `  holds      ${datasetContents(dataset)}`,
    `  created    ${dataset.createdAt}`,
  ];
  if (dataset.source === "prefix") {
    lines.push('  counted    when a train job freezes it (docs/api.md, "Datasets")');
  }
  return lines.join("\n");
}
