/**
 * Registers a tokenizer folder (manifest.json beside the files it names, as the trainer writes
 * it) as a public tokenizer. Registration is idempotent on the edge: the same manifest answers
 * with the same tokenizer and the files still missing, and only those are uploaded.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { manifestHash, parseManifest } from "@revq/shared";
import type { Admin } from "./admin.ts";

export type RegisteredTokenizer = { id: string; name: string; manifestHash: string };

type Registration = {
  tokenizer: { id: string; name: string; manifestHash: string; status: string };
  fileProblems: { path: string; problem: string }[];
};

export function readManifest(dir: string) {
  const path = join(dir, "manifest.json");
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`cannot read the tokenizer manifest ${path}: ${(error as Error).message}`);
  }
  try {
    return parseManifest(json);
  } catch (error) {
    throw new Error(`${path} is not a valid tokenizer manifest: ${(error as Error).message}`);
  }
}

export async function registerTokenizerFolder(
  admin: Admin,
  dir: string,
): Promise<RegisteredTokenizer> {
  const manifest = readManifest(dir);
  const hash = await manifestHash(manifest);
  let answer = await admin.call<Registration>("POST", "/v1/admin/tokenizers", manifest);
  for (const { path } of answer.fileProblems) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(join(dir, path)));
    } catch (error) {
      throw new Error(
        `the tokenizer in ${dir} names ${path}, which cannot be read: ${(error as Error).message}`,
      );
    }
    answer = await admin.call<Registration>(
      "PUT",
      `/v1/admin/tokenizers/${answer.tokenizer.id}/files/${path}`,
      bytes,
    );
  }
  const { tokenizer } = answer;
  if (tokenizer.status !== "ready" || tokenizer.manifestHash !== hash) {
    throw new Error(
      `tokenizer ${tokenizer.id} is ${tokenizer.status} after uploading its files: ${JSON.stringify(answer.fileProblems)}`,
    );
  }
  return { id: tokenizer.id, name: tokenizer.name, manifestHash: hash };
}
