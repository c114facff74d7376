/** revq tokenizers: the tokenizers this key can use, and one in detail. */

import { writeFile } from "node:fs/promises";
import { Tenant, type Tokenizer, TokenizerList, TokenizerWithManifest } from "@revq/shared";
import { stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { usageError } from "../errors.ts";
import { evaluationLines } from "../evaluation.ts";
import { formatBytes } from "../output.ts";

const help = `usage: revq tokenizers [list] [--all]
       revq tokenizers show ID [--manifest FILE]
       revq tokenizers default [ID | --clear]

  list       the ready tokenizers (public ones and this tenant's own); --all: pending ones too
  show       one tokenizer, by id, manifest hash or name; --manifest writes its manifest to FILE
  default    the tokenizer jobs use when they name none; ID makes it this tenant's default,
             --clear goes back to the deployment's
${COMMON_HELP}`;

export const tokenizers: Command = {
  name: "tokenizers",
  summary: "list the tokenizers, show one",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      all: { type: "boolean" },
      manifest: { type: "string" },
      clear: { type: "boolean" },
    });
    if (!s) return;
    const [action = "list", id, ...rest] = s.parsed.positionals;
    if (rest.length > 0) throw usageError(`unexpected ${rest.join(" ")}`);
    const api = s.api();
    if (action === "list") {
      const { tokenizers: list } = await api.json("GET", "/v1/tokenizers", TokenizerList, {
        query: { status: s.parsed.values.all ? "all" : "ready" },
      });
      s.out.result({ tokenizers: list });
      if (list.length === 0) s.out.line("no tokenizers");
      for (const t of list) s.out.line(tokenizerLine(t));
      return;
    }
    if (action === "show") {
      if (!id) throw usageError("revq tokenizers show needs a tokenizer id, manifest hash or name");
      const t = await api.json(
        "GET",
        `/v1/tokenizers/${encodeURIComponent(id)}`,
        TokenizerWithManifest,
      );
      const manifestFile = stringOption(s.parsed, "manifest");
      if (manifestFile) await writeFile(manifestFile, `${JSON.stringify(t.manifest, null, 2)}\n`);
      s.out.result(t);
      s.out.line(tokenizerLine(t));
      s.out.line(`  manifest hash  ${t.manifestHash}`);
      for (const f of t.files) s.out.line(`  file           ${f.path} (${formatBytes(f.bytes)})`);
      for (const line of t.evaluation ? evaluationLines(t.evaluation) : []) s.out.line(line);
      if (manifestFile) s.out.line(`  manifest       written to ${manifestFile}`);
      return;
    }
    if (action === "default") {
      const clear = s.parsed.values.clear === true;
      if (clear && id) throw usageError("give a tokenizer or --clear, not both");
      const tenant = clear
        ? await api.json("DELETE", "/v1/tenant/default-tokenizer", Tenant)
        : id
          ? await api.json("PUT", "/v1/tenant/default-tokenizer", Tenant, {
              body: { tokenizer: id },
            })
          : await api.json("GET", "/v1/tenant", Tenant);
      s.out.result({ defaultTokenizer: tenant.defaultTokenizer });
      const chosen = tenant.defaultTokenizer;
      s.out.line(
        chosen
          ? `${chosen.id}  ${chosen.name}  (${chosen.from === "tenant" ? "this tenant's default" : "the deployment's default"})`
          : "no default tokenizer: jobs must name one",
      );
      return;
    }
    throw usageError(`unknown action ${JSON.stringify(action)}`, "see revq tokenizers --help");
  },
};

export function tokenizerLine(t: Tokenizer): string {
  const q = t.quantizer;
  const groups = q.groups === 1 ? "1 group" : `${q.groups} groups`;
  const shape = `${q.tokens} tokens × ${q.codesPerGroup} codes${q.groups === q.tokens ? "" : ` (${groups})`}`;
  return `${t.id}  ${t.name}  ${shape}  ${t.owner}${t.status === "ready" ? "" : ` ${t.status}`}`;
}
