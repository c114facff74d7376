/**
 * revq decode TOKENS|--job ID: token ids back to quantized latents (codebook lookup on the edge),
 * or to ids in another form. The file is checked with the shared format code before it is sent,
 * so a damaged or foreign file is refused here with the reason.
 */
import type { CallOptions } from "../api.ts";
import { choice, stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { usageError } from "../errors.ts";
import { formatBytes, writeOutput } from "../output.ts";
import { readTokenFile } from "../token-files.ts";

const FORMATS = {
  latents: ["npy", "safetensors"],
  ids: ["json", "npy"],
} as const;

const help = `usage: revq decode TOKENS_FILE [options]
       revq decode --job JOB_ID [options]

Turns tokens (a token stream .rvqt or the JSON form, or a finished encode job's tokens) into the
quantized latents, (N, C, H, W) float32 in the tokenizer's normalised space: what the rectifier
takes. Pixels need the rectifier and the VAE on a GPU: that is revq reconstruct.

  --job <id>          decode this encode job's tokens instead of a file
  --output <o>        latents or ids [latents]
  --format <f>        latents: npy or safetensors [npy]; ids: json or npy [json]
  --tokenizer <id>    check that the tokens are this tokenizer's
  -o, --out <file>    where to write ("-": stdout) [latents.npy, ids.json, ...]
${COMMON_HELP}`;

export const decode: Command = {
  name: "decode",
  summary: "tokens → quantized latents (or ids as JSON/.npy), on the edge",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      job: { type: "string" },
      output: { type: "string" },
      format: { type: "string" },
      tokenizer: { type: "string" },
      out: { type: "string", short: "o" },
    });
    if (!s) return;
    const output = choice(s.parsed, "output", ["latents", "ids"] as const, "latents");
    const format = choice(s.parsed, "format", FORMATS[output], FORMATS[output][0]);
    const target = stringOption(s.parsed, "out") ?? `${output}.${format}`;
    const job = stringOption(s.parsed, "job");
    const files = s.parsed.positionals;
    if ((job === undefined) === (files.length === 0) || files.length > 1) {
      throw usageError("give one token file, or --job", "see revq decode --help");
    }
    const body: CallOptions = job ? { body: { job } } : await tokenFileBody(files[0]);
    const bytes = await s.api().bytes("POST", "/v1/decode", {
      ...body,
      query: { output, format, tokenizer: stringOption(s.parsed, "tokenizer") },
    });
    await writeOutput(target, bytes);
    s.out.result({ output, format, file: target, bytes: bytes.length });
    if (target !== "-") s.out.line(`${output} → ${target} (${formatBytes(bytes.length)})`);
  },
};

async function tokenFileBody(path: string): Promise<CallOptions> {
  const file = await readTokenFile(path);
  // Ids alone, as --format npy writes them: nothing in the file says whose codes they are.
  if (file.form === "npy") {
    throw usageError(
      `${path} is a .npy of token ids, which does not name its tokenizer: the edge cannot decode it`,
      "decode the encode job's tokens instead: revq decode --job JOB_ID (revq jobs --kind encode lists them)",
    );
  }
  return { body: file.body, contentType: file.contentType };
}
