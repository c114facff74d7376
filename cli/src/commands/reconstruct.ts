/**
 * revq reconstruct JOB_ID | TOKENS | FILES: tokens back to pixels (codebook lookup, rectifier,
 * VAE decoder on a GPU worker), as PNGs. From an encode job's tokens, from a token file (what a
 * generative model wrote: uploaded first), or straight from images (an encode job first), which
 * shows what the tokenizer keeps of them. With --latents, also the VAE latents the PNGs were
 * decoded from, as one .npy (what diffusion and autoregressive pipelines take).
 */

import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { Job, UploadedTokens } from "@revq/shared";
import * as z from "zod";
import type { Api } from "../api.ts";
import { stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { encodeImages } from "../encode.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { collectImages } from "../images.ts";
import { getJob, requireSucceeded, waitForJob } from "../jobs.ts";
import { type Output, writeOutput } from "../output.ts";
import { readTokenFile } from "../token-files.ts";
import { chooseTokenizer, namedTokenizer } from "../tokenizer-choice.ts";

/**
 * A succeeded reconstruct job's result, as its job view shows it: one PNG per record, each with
 * its download url (a job's `result` is free-form in the API's Job schema, so it is checked here).
 */
const Download = z.looseObject({ bytes: z.number(), url: z.string() });
const ReconstructResult = z.looseObject({
  images: z.array(Download.extend({ index: z.number() })),
  latents: Download.optional(),
});

const help = `usage: revq reconstruct JOB_ID [options]
       revq reconstruct TOKENS.rvqt|TOKENS.json|TOKENS.npy [options]
       revq reconstruct FILES|DIR... [options]

Reconstructs images from tokens on a GPU worker and downloads them as PNGs: from a finished
encode job's tokens, from a token file (a token stream, the JSON form, or a .npy of integer ids
of shape (N, T), e.g. what your model generated), or from images (tokenized first, with
--tokenizer), to see what the tokenizer keeps of them.

  -o, --out <dir>     folder for the PNGs [reconstructed]
  --latents           also download the rectified, de-normalised VAE latents they were decoded
                      from: latents.npy in the folder, float32 of shape (N, C, H, W)
  --tokenizer <id>    for images and .npy: the tokenizer (default REVQ_TOKENIZER, else the only
                      one); for a token stream or JSON, checked against the one it names
${COMMON_HELP}`;

export const reconstruct: Command = {
  name: "reconstruct",
  summary: "tokens (an encode job) or images → reconstructed PNGs",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      out: { type: "string", short: "o" },
      tokenizer: { type: "string" },
      latents: { type: "boolean" },
    });
    if (!s) return;
    const dir = stringOption(s.parsed, "out") ?? "reconstructed";
    const args = s.parsed.positionals;
    if (args.length === 0) {
      throw usageError("give an encode job id, or images", "see revq reconstruct --help");
    }
    const fromJob = args.length === 1 && args[0].startsWith("job_") && !existsSync(args[0]);
    const fromFile = args.length === 1 && TOKEN_FILE.test(args[0]);
    const api = s.api();
    const tokenizerOption = stringOption(s.parsed, "tokenizer");
    let source: TokenSource;
    let paths: string[] | undefined;
    if (fromJob) {
      const job = await getJob(api, args[0]);
      if (job.kind !== "encode") {
        throw usageError(`${job.id} is a ${job.kind} job, not an encode job`);
      }
      requireSucceeded(job);
      source = fromEncodeJob(job);
    } else if (fromFile) {
      source = await uploadTokenFile(api, s.out, args[0], tokenizerOption);
    } else {
      const images = await collectImages(args, s.out);
      const tokenizer = await chooseTokenizer(api, tokenizerOption);
      source = fromEncodeJob((await encodeImages(api, s.out, images, tokenizer)).job);
      paths = images.map((i) => i.path);
    }
    const withLatents = s.parsed.values.latents === true;
    const job = await reconstructJob(api, s.out, source, withLatents);
    const parsed = ReconstructResult.safeParse(job.result);
    if (!parsed.success) {
      const hint = "the edge may run another version than this CLI";
      throw new CliError(`job ${job.id} succeeded without listing its images`, EXIT.unavailable, {
        hint,
      });
    }
    const { images, latents } = parsed.data;
    // Named after the images when we know them, else by record.
    const named = paths ? pngNames(paths) : undefined;
    const nameOf = (index: number) => named?.[index] ?? `${String(index).padStart(4, "0")}.png`;
    await mkdir(dir, { recursive: true });
    const files: string[] = [];
    const download = s.out.progress("download");
    for (const [n, image] of images.entries()) {
      files.push(
        await downloadTo(api, image, join(dir, nameOf(image.index)), `image ${image.index}`),
      );
      download.update(n + 1, images.length);
    }
    download.end();
    if (withLatents) {
      if (!latents) {
        throw new CliError(`job ${job.id} succeeded without its latents`, EXIT.unavailable);
      }
      files.push(await downloadTo(api, latents, join(dir, "latents.npy"), "the latents"));
    }
    s.out.result({ job: job.id, source: source.id, files });
    const pngs = images.length;
    s.out.line(
      `${pngs} PNG${pngs === 1 ? "" : "s"}${withLatents ? " and latents.npy" : ""} in ${dir}/ (job ${job.id})`,
    );
  },
};

/** A token file's extensions: what revq tokenize writes, and a .npy of ids. */
const TOKEN_FILE = /\.(rvqt|json|npy)$/i;

/** What a reconstruct job takes: the tokens' tokenizer and where the tokens are. */
type TokenSource = { id: string; tokenizer: string; inputs: { job: string } | { tokens: string } };

function fromEncodeJob(job: Job): TokenSource {
  if (!job.tokenizer) throw usageError(`${job.id} names no tokenizer`);
  return { id: job.id, tokenizer: job.tokenizer.id, inputs: { job: job.id } };
}

/** Uploads the file's tokens (checked here first, then by the edge against their tokenizer). */
async function uploadTokenFile(
  api: Api,
  out: Output,
  path: string,
  named: string | undefined,
): Promise<TokenSource> {
  const file = await readTokenFile(path);
  // A .npy names no tokenizer; a stream or JSON names its own, which --tokenizer must be.
  const tokenizer =
    file.form === "npy" ? await chooseTokenizer(api, named) : await namedTokenizer(api, named);
  const uploaded = await api.json("POST", "/v1/tokens", UploadedTokens, {
    body: file.body,
    contentType: file.contentType,
    query: { tokenizer: tokenizer?.id },
  });
  out.note(`${uploaded.recordCount} records of ${path} uploaded as ${uploaded.id}`);
  return { id: uploaded.id, tokenizer: uploaded.tokenizer.id, inputs: { tokens: uploaded.id } };
}

/** Downloads one of the job's outputs to `file`, checked against the size the job recorded. */
async function downloadTo(
  api: Api,
  output: z.infer<typeof Download>,
  file: string,
  what: string,
): Promise<string> {
  const bytes = await api.bytes("GET", output.url);
  if (bytes.length !== output.bytes) {
    throw new CliError(
      `${what} came with ${bytes.length} bytes, not ${output.bytes}`,
      EXIT.unavailable,
    );
  }
  await writeOutput(file, bytes);
  return file;
}

async function reconstructJob(
  api: Api,
  out: Output,
  source: TokenSource,
  latents: boolean,
): Promise<Job> {
  const created = await api.json("POST", "/v1/jobs", Job, {
    body: { kind: "reconstruct", tokenizer: source.tokenizer, inputs: source.inputs, latents },
    idempotencyKey: randomUUID(),
  });
  out.note(`reconstruct job ${created.id} queued`);
  const progress = out.progress("decode  ");
  const job = await waitForJob(api, created.id, progress);
  progress.end();
  requireSucceeded(job);
  return job;
}

/** photo.jpg → photo.png; when two images share a name, every name gets its index. */
export function pngNames(paths: string[]): string[] {
  const stems = paths.map((p) => basename(p, extname(p)));
  const unique = new Set(stems).size === stems.length;
  return stems.map((stem, i) =>
    unique ? `${stem}.png` : `${String(i).padStart(4, "0")}-${stem}.png`,
  );
}
