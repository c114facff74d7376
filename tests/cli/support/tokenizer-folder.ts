/**
 * The e2e tests' tiny tokenizer (tests/e2e/support/tiny-tokenizer.ts: the fixture DC-AE with a
 * codebook from synthetic images) written as a tokenizer folder, manifest.json beside its files:
 * what `npm start` registers from models/default-tokenizer/ once that is shipped.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type BuiltTokenizer, buildTinyTokenizer } from "../../e2e/support/tiny-tokenizer.ts";

/** Builds the tokenizer (on the current tfjs backend) into `dir`. */
export async function writeTinyTokenizerFolder(dir: string): Promise<BuiltTokenizer> {
  const built = await buildTinyTokenizer();
  writeTokenizerFolder(dir, built);
  return built;
}

export function writeTokenizerFolder(dir: string, built: BuiltTokenizer): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "manifest.json"), `${JSON.stringify(built.manifest, null, 2)}\n`);
  for (const [path, bytes] of built.files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), bytes);
  }
}
