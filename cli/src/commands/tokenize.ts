/** revq tokenize FILES|DIR: images to tokens, through the edge and a GPU worker. */
import { choice, stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { downloadTokens, encodeImages, TOKEN_EXTENSIONS, TOKEN_FORMATS } from "../encode.ts";
import { collectImages } from "../images.ts";
import { formatBytes, writeOutput } from "../output.ts";
import { chooseTokenizer } from "../tokenizer-choice.ts";

const help = `usage: revq tokenize FILES|DIR... [options]

Uploads the images (folders are searched for .png, .jpg, .jpeg and .webp), runs one encode job
and downloads its tokens: record i holds the tokens of the i-th image, in the order listed.

  --tokenizer <id>    tokenizer id or manifest hash (default REVQ_TOKENIZER, else the only one)
  --format <f>        rvq (token stream, docs/token-stream.md), json, or npy (int32, N×T)
                      [rvq]
  -o, --out <file>    where to write the tokens ("-": stdout) [tokens.rvqt, .json, .npy]
${COMMON_HELP}`;

export const tokenize: Command = {
  name: "tokenize",
  summary: "images → tokens (upload, encode job, download)",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      tokenizer: { type: "string" },
      format: { type: "string" },
      out: { type: "string", short: "o" },
    });
    if (!s) return;
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
