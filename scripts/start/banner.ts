/** What `npm start` prints once everything runs: where, with which keys, and what to try. */
import { join, relative } from "node:path";
import { ROOT } from "./options.ts";
import type { Seed } from "./seed.ts";
import type { RegisteredTokenizer } from "./tokenizer-folder.ts";
import type { WorkerStart } from "./worker.ts";

export type Running = {
  url: string;
  seed: Seed;
  tokenizer: RegisteredTokenizer | undefined;
  tokenizerDir: string;
  worker: WorkerStart;
  localEnv: string;
  logDir: string;
};

/** Relative to where the user is, unless that needs "../". */
function show(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
}

function device(w: WorkerStart): string {
  const on = `${w.backend} (${w.device})`;
  return w.accelerated ? `${on} on the GPU` : `${on}, no GPU: see docs/self-hosting.md`;
}

/** The CLI finds .revq/local.env from the repository; any other state dir is sourced first. */
function cliExample(r: Running): string[] {
  const found = r.localEnv === join(ROOT, ".revq", "local.env");
  return [
    "",
    ...(found ? [] : [`  set -a; . ${r.localEnv}; set +a    # REVQ_URL, REVQ_API_KEY for the CLI`]),
    "  npx revq tokenize tests/cli/fixtures/chelsea.jpg -o chelsea.rvqt",
    "  npx revq decode chelsea.rvqt -o latents.npy",
    "  npx revq reconstruct tests/cli/fixtures/chelsea.jpg -o reconstructed",
    "  npx revq jobs",
  ];
}

export function banner(r: Running): string {
  const lines = [
    "",
    `revq is running at ${r.url}`,
    "",
    `  API key      ${r.seed.apiKey}`,
    `  worker key   ${r.seed.workerKey}`,
    `  admin key    ADMIN_KEY in ${show(join(ROOT, ".dev.vars"))}`,
    `  worker       revq-worker on ${device(r.worker)}`,
    r.tokenizer
      ? `  tokenizer    ${r.tokenizer.name} (${r.tokenizer.id}, ${r.tokenizer.manifestHash.slice(0, 12)}…)`
      : `  tokenizer    none: no default tokenizer is shipped yet (${show(r.tokenizerDir)} does not exist).\n` +
        '               Register one with the admin API (docs/api.md, "Tokenizers") or train one (revq train).',
    `  console      ${r.url}/ (sign in with the API key)`,
    `  API docs     ${r.url}/v1/reference`,
    `  for scripts  ${show(r.localEnv)} (REVQ_URL, REVQ_API_KEY; the revq CLI reads it)`,
    `  logs         ${show(r.logDir)}/`,
    "",
    "Try it:",
    "",
    `  curl -s -H "Authorization: Bearer ${r.seed.apiKey}" ${r.url}/v1/tokenizers`,
    `  curl -s -H "Authorization: Bearer ${r.seed.apiKey}" -H "Content-Type: image/jpeg" \\`,
    `       --data-binary @tests/cli/fixtures/chelsea.jpg ${r.url}/v1/images`,
    ...cliExample(r),
    "",
    "Data is kept in the state directory across restarts. Ctrl-C stops everything.",
    "",
  ];
  return lines.join("\n");
}
