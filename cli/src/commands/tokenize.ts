/** revq tokenize FILES|DIR | --dataset ID|DIR: images to tokens, through the edge and GPU workers. */
import { stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { Dataset, type Tokenizer } from "@revq/shared";
import type { Api } from "../api.ts";
import { choice, type Parsed, positiveInt, stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { DATASET_FILES, downloadDataset, encodeDataset } from "../dataset-encode.ts";
import { ADD_OPTIONS, addHelp, addLimits, resumeCommand } from "../dataset-upload.ts";
import { downloadTokens, encodeImages, TOKEN_EXTENSIONS, TOKEN_FORMATS } from "../encode.ts";
import { usageError } from "../errors.ts";
import { collectImages } from "../images.ts";
import { formatBytes, type Output, writeOutput } from "../output.ts";
import { chooseTokenizer } from "../tokenizer-choice.ts";
import { trainingDataset } from "../train-dataset.ts";

const help = `usage: revq tokenize FILES|DIR... [options]
       revq tokenize --dataset ID|DIR [options]

Uploads the images (folders are searched for .png, .jpg, .jpeg and .webp), runs one encode job
and downloads its tokens: record i holds the tokens of the i-th image, in the order listed.

With --dataset, encodes a whole dataset (up to MAX_DATASET_IMAGES) in shards that any number of
GPU workers encode in parallel, and writes to the --out folder each shard's token stream
(shard-000000.rvqt, ...), ${DATASET_FILES.manifest} (the shards: first record, records, bytes, ETag)
and ${DATASET_FILES.records} (record → image id or file). A folder is uploaded as a dataset named
after it first (resumed when an earlier run's holds the first of its images). Shards made before
from the same images, tokenizer and shard size are reused, not encoded again.

  --tokenizer <id>    tokenizer id, manifest hash or name (default REVQ_TOKENIZER, else the edge's)
  --format <f>        rvq (token stream, docs/token-stream.md), json, or npy (int32, N×T)
                      [rvq; a dataset's shards are token streams]
  -o, --out <path>    where to write the tokens ("-": stdout) [tokens.rvqt, .json, .npy];
                      with --dataset, a folder [tokens]
  --dataset <id|dir>  encode this dataset (revq datasets), or this folder as a new dataset
  --shard-size <n>    with --dataset: images per shard [the edge's, 256]
${addHelp("with --dataset DIR")}${COMMON_HELP}`;

export const tokenize: Command = {
  name: "tokenize",
  summary: "images → tokens (upload, encode job, download)",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      tokenizer: { type: "string" },
      format: { type: "string" },
      out: { type: "string", short: "o" },
      dataset: { type: "string" },
      "shard-size": { type: "string" },
      ...ADD_OPTIONS,
    });
    if (!s) return;
    const dataset = stringOption(s.parsed, "dataset");
    if (dataset !== undefined) {
      if (s.parsed.positionals.length > 0 || s.parsed.values.format !== undefined) {
        throw usageError(
          "--dataset takes no image files and no --format (its shards are token streams)",
          "see revq tokenize --help",
        );
      }
      const api = s.api();
      const tokenizer = await chooseTokenizer(api, stringOption(s.parsed, "tokenizer"));
      await tokenizeDataset(api, s.out, s.parsed, dataset, tokenizer);
      return;
    }
    const format = choice(s.parsed, "format", TOKEN_FORMATS, "rvq");
    const target = stringOption(s.parsed, "out") ?? `tokens.${TOKEN_EXTENSIONS[format]}`;
    const images = await collectImages(s.parsed.positionals, s.out);
    const api = s.api();
    const tokenizer = await chooseTokenizer(api, stringOption(s.parsed, "tokenizer"));
    const { job, images: uploaded } = await encodeImages(api, s.out, images, tokenizer);
    const bytes = await downloadTokens(api, job.id, format, {
      records: uploaded.length,
      tokenizerHash: tokenizer.manifestHash,
    });
    await writeOutput(target, bytes);
    const q = tokenizer.quantizer;
    s.out.result({
      job: job.id,
      tokenizer: { id: tokenizer.id, name: tokenizer.name, manifestHash: tokenizer.manifestHash },
      format,
      output: target,
      bytes: bytes.length,
      tokensPerImage: q.tokens,
      codesPerGroup: q.codesPerGroup,
      images: uploaded.map((image, record) => ({ record, file: image.path, imageId: image.id })),
      metrics: job.result?.metrics,
    });
    if (target !== "-") {
      s.out.line(
        `${uploaded.length} image${uploaded.length === 1 ? "" : "s"} → ${q.tokens} tokens each ` +
          `(${q.codesPerGroup} codes per group) → ${target} (${formatBytes(bytes.length)})`,
      );
      // A .npy holds ids alone, without the tokenizer that made them: decode the job's tokens.
      const decode = format === "npy" ? `--job ${job.id}` : target;
      s.out.line(`job ${job.id}; next: revq decode ${decode}, revq reconstruct ${job.id}`);
    }
  },
};

/** The dataset named, or the folder uploaded as a dataset named after it. */
async function datasetFor(api: Api, out: Output, parsed: Parsed, value: string): Promise<Dataset> {
  const isFolder = await stat(value).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!isFolder) return api.json("GET", `/v1/datasets/${encodeURIComponent(value)}`, Dataset);
  const images = await collectImages([value], out);
  return trainingDataset(api, out, basename(resolve(value)), images, {
    limits: addLimits(parsed),
    resume: (id, done) =>
      `run the same revq tokenize again (it resumes), or ${resumeCommand(id, [value], parsed, done)}, then revq tokenize --dataset ${id}`,
  });
}

async function tokenizeDataset(
  api: Api,
  out: Output,
  parsed: Parsed,
  value: string,
  tokenizer: Tokenizer,
) {
  const target = stringOption(parsed, "out") ?? "tokens";
  if (target === "-") throw usageError("--dataset writes a folder, not stdout", "name --out DIR");
  const dataset = await datasetFor(api, out, parsed, value);
  const job = await encodeDataset(
    api,
    out,
    dataset.id,
    tokenizer,
    positiveInt(parsed, "shard-size"),
  );
  const { manifest, bytes } = await downloadDataset(api, out, job.id, target);
  out.result({
    job: job.id,
    dataset: dataset.id,
    tokenizer: { id: tokenizer.id, name: tokenizer.name, manifestHash: tokenizer.manifestHash },
    output: target,
    bytes,
    records: manifest.recordCount,
    shardSize: manifest.shardSize,
    shards: manifest.shards.length,
  });
  const q = tokenizer.quantizer;
  out.line(
    `${manifest.recordCount} images of dataset ${dataset.id} → ${q.tokens} tokens each → ` +
      `${manifest.shards.length} shards in ${target}/ (${formatBytes(bytes)}), with ${DATASET_FILES.manifest} and ${DATASET_FILES.records}`,
  );
  out.line(`job ${job.id}; the whole stream: GET /v1/jobs/${job.id}/tokens`);
}
