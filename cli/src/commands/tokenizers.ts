/** revq tokenizers: the tokenizers this key can use, and one in detail. */

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { sha256Hex, Tenant, Tokenizer, TokenizerList, TokenizerWithManifest } from "@revq/shared";
import { stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { evaluationLines } from "../evaluation.ts";
import { formatBytes } from "../output.ts";
import { uploadTokenizerFolder } from "../tokenizer-upload.ts";

const help = `usage: revq tokenizers [list] [--all]
       revq tokenizers show ID [--manifest FILE]
       revq tokenizers default [ID | --clear]
       revq tokenizers rename ID NAME
       revq tokenizers delete ID
       revq tokenizers download ID [-o DIR]
       revq tokenizers upload DIR

  list       the ready tokenizers (public ones and this tenant's own); --all: pending ones too
  show       one tokenizer, by id, manifest hash or name; --manifest writes its manifest to FILE
  default    the tokenizer jobs use when they name none; ID makes it this tenant's default,
             --clear goes back to the deployment's
  rename     give one of this tenant's tokenizers a new name
  delete     one of this tenant's tokenizers: no new job uses it; its tokens still decode
  download   the manifest and its files, as a folder (npm start -- --tokenizer DIR takes it)
  upload     a tokenizer folder revq-train wrote, as this tenant's own (its name must be free);
             files the edge already holds (a base tokenizer's VAE) are not sent
${COMMON_HELP}`;

type Setup = NonNullable<ReturnType<typeof setup>>;

export const tokenizers: Command = {
  name: "tokenizers",
  summary: "list, show, rename, delete, download and upload tokenizers; the default",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      all: { type: "boolean" },
      manifest: { type: "string" },
      clear: { type: "boolean" },
      out: { type: "string", short: "o" },
    });
    if (!s) return;
    const [action = "list", ...args] = s.parsed.positionals;
    const expect = (count: number, usage: string) => {
      if (args.length !== count) throw usageError(`usage: revq tokenizers ${action} ${usage}`);
      return args;
    };
    switch (action) {
      case "list":
        expect(0, "[--all]");
        return list(s);
      case "show":
        return show(s, expect(1, "ID [--manifest FILE]")[0]);
      case "default":
        return chooseDefault(s, args.length === 0 ? undefined : expect(1, "[ID | --clear]")[0]);
      case "rename": {
        const [id, name] = expect(2, "ID NAME");
        const t = await s.api().json("PATCH", tokenizerPath(id), Tokenizer, { body: { name } });
        s.out.result(t);
        s.out.line(tokenizerLine(t));
        return;
      }
      case "delete": {
        const [id] = expect(1, "ID");
        await s.api().call("DELETE", tokenizerPath(id));
        s.out.result({ deleted: id });
        s.out.line(`${id} deleted: no new job uses it; tokens made with it still decode`);
        return;
      }
      case "download":
        return download(s, expect(1, "ID [-o DIR]")[0]);
      case "upload":
        return upload(s, expect(1, "DIR")[0]);
      default:
        throw usageError(`unknown action ${JSON.stringify(action)}`, "see revq tokenizers --help");
    }
  },
};

const tokenizerPath = (id: string) => `/v1/tokenizers/${encodeURIComponent(id)}`;

async function list(s: Setup) {
  const { tokenizers: all } = await s.api().json("GET", "/v1/tokenizers", TokenizerList, {
    query: { status: s.parsed.values.all ? "all" : "ready" },
  });
  s.out.result({ tokenizers: all });
  if (all.length === 0) s.out.line("no tokenizers");
  for (const t of all) s.out.line(tokenizerLine(t));
}

async function show(s: Setup, id: string) {
  const t = await s.api().json("GET", tokenizerPath(id), TokenizerWithManifest);
  const manifestFile = stringOption(s.parsed, "manifest");
  if (manifestFile) await writeFile(manifestFile, `${JSON.stringify(t.manifest, null, 2)}\n`);
  s.out.result(t);
  s.out.line(tokenizerLine(t));
  s.out.line(`  manifest hash  ${t.manifestHash}`);
  for (const f of t.files) s.out.line(`  file           ${f.path} (${formatBytes(f.bytes)})`);
  for (const line of t.evaluation ? evaluationLines(t.evaluation) : []) s.out.line(line);
  if (manifestFile) s.out.line(`  manifest       written to ${manifestFile}`);
}

async function chooseDefault(s: Setup, id: string | undefined) {
  const clear = s.parsed.values.clear === true;
  if (clear && id) throw usageError("give a tokenizer or --clear, not both");
  const api = s.api();
  const tenant = clear
    ? await api.json("DELETE", "/v1/tenant/default-tokenizer", Tenant)
    : id
      ? await api.json("PUT", "/v1/tenant/default-tokenizer", Tenant, { body: { tokenizer: id } })
      : await api.json("GET", "/v1/tenant", Tenant);
  s.out.result({ defaultTokenizer: tenant.defaultTokenizer });
  const chosen = tenant.defaultTokenizer;
  s.out.line(
    chosen
      ? `${chosen.id}  ${chosen.name}  (${chosen.from === "tenant" ? "this tenant's default" : "the deployment's default"})`
      : "no default tokenizer: jobs must name one",
  );
}

/** The manifest, byte for byte as hashed, beside every file it pins, each checked on arrival. */
async function download(s: Setup, id: string) {
  const api = s.api();
  const t = await api.json("GET", tokenizerPath(id), TokenizerWithManifest);
  const dir = resolve(stringOption(s.parsed, "out") ?? t.name);
  const manifest = await api.bytes("GET", `${tokenizerPath(t.id)}/manifest.json`);
  if ((await sha256Hex(manifest)) !== t.manifestHash) {
    throw new CliError(
      `the manifest of ${t.id} does not hash to ${t.manifestHash}`,
      EXIT.unavailable,
    );
  }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "manifest.json"), manifest);
  const progress = s.out.progress("download");
  for (const [n, f] of t.files.entries()) {
    const target = resolve(dir, f.path);
    if (!target.startsWith(`${dir}/`)) {
      throw new CliError(`${t.id} names a file outside its folder: ${f.path}`, EXIT.unavailable);
    }
    const filePath = f.path.split("/").map(encodeURIComponent).join("/");
    const bytes = await api.bytes("GET", `${tokenizerPath(t.id)}/files/${filePath}`);
    if (bytes.length !== f.bytes || (await sha256Hex(bytes)) !== f.sha256) {
      throw new CliError(
        `${f.path} of ${t.id} is not the file its manifest pins`,
        EXIT.unavailable,
      );
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
    progress.update(n + 1, t.files.length);
  }
  progress.end();
  s.out.result({ tokenizer: t.id, dir, files: t.files.map((f) => f.path) });
  s.out.line(`${t.id} ${t.name} → ${dir}/ (manifest.json and ${t.files.length} files)`);
}

async function upload(s: Setup, dir: string) {
  const { registration, sent } = await uploadTokenizerFolder(
    s.api(),
    dir,
    s.out.progress("upload"),
  );
  const t = registration.tokenizer;
  s.out.result({ ...registration, sent });
  s.out.line(tokenizerLine(t));
  const kept = t.files.length - sent.length;
  s.out.line(
    `  ${sent.length} of ${t.files.length} files sent${kept > 0 ? `; ${kept} already at the edge` : ""}`,
  );
}

export function tokenizerLine(t: Tokenizer): string {
  const q = t.quantizer;
  const groups = q.groups === 1 ? "1 group" : `${q.groups} groups`;
  const shape = `${q.tokens} tokens × ${q.codesPerGroup} codes${q.groups === q.tokens ? "" : ` (${groups})`}`;
  return `${t.id}  ${t.name}  ${shape}  ${t.owner}${t.status === "ready" ? "" : ` ${t.status}`}`;
}
