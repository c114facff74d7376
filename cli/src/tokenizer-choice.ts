/**
 * Which tokenizer a command uses: --tokenizer, else REVQ_TOKENIZER, else the edge's default for
 * this tenant (its own choice, else DEFAULT_TOKENIZER), else the only ready one the key can see.
 * With several, no default and none named, the user must choose. Training asks only for the
 * named: the edge applies the default itself.
 */
import { Tenant, type Tokenizer, TokenizerList, TokenizerWithManifest } from "@revq/shared";
import type { Api } from "./api.ts";
import { CliError, EXIT } from "./errors.ts";

/** The tokenizer --tokenizer (`named`) or REVQ_TOKENIZER names; undefined when neither does. */
export async function namedTokenizer(
  api: Api,
  named: string | undefined,
): Promise<Tokenizer | undefined> {
  const wanted = named ?? process.env.REVQ_TOKENIZER;
  if (!wanted) return undefined;
  return api.json("GET", `/v1/tokenizers/${encodeURIComponent(wanted)}`, TokenizerWithManifest);
}

export async function chooseTokenizer(api: Api, named: string | undefined): Promise<Tokenizer> {
  const chosen = await namedTokenizer(api, named);
  if (chosen) return chosen;
  const { defaultTokenizer } = await api.json("GET", "/v1/tenant", Tenant);
  if (defaultTokenizer) {
    return api.json("GET", `/v1/tokenizers/${defaultTokenizer.id}`, TokenizerWithManifest);
  }
  const { tokenizers } = await api.json("GET", "/v1/tokenizers", TokenizerList, {
    query: { status: "ready" },
  });
  if (tokenizers.length === 1) return tokenizers[0];
  if (tokenizers.length === 0) {
    throw new CliError("this edge has no ready tokenizer", EXIT.refused, {
      hint: 'register one (docs/api.md, "Tokenizers") or train one with `revq train`',
    });
  }
  const list = tokenizers.map((t) => `  ${t.id}  ${t.name}`).join("\n");
  throw new CliError(`${tokenizers.length} tokenizers are ready; say which:\n${list}`, EXIT.usage, {
    hint: "pass --tokenizer <id>, set REVQ_TOKENIZER, or choose a default: revq tokenizers default <id>",
  });
}
