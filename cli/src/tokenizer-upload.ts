/**
 * A tokenizer folder (manifest.json beside the files it names, as `revq-train` writes one) sent
 * to the edge as one of this tenant's tokenizers. Every file is checked against the manifest
 * here first, so a damaged folder is refused before anything is sent; then the manifest goes up
 * and only the files the edge lacks follow (it copies those it already holds).
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  manifestFiles,
  manifestHash,
  parseManifest,
  sha256Hex,
  type TokenizerManifest,
  TokenizerRegistration,
} from "@revq/shared";
import type { Api } from "./api.ts";
import { CliError, EXIT, usageError } from "./errors.ts";
import type { Progress } from "./progress.ts";

export type Uploaded = {
  registration: TokenizerRegistration;
  /** The files sent; the others were already at the edge. */
  sent: string[];
};

export async function uploadTokenizerFolder(
  api: Api,
  folder: string,
  progress: Progress,
): Promise<Uploaded> {
  const dir = resolve(folder);
  const manifest = await readManifest(dir);
  const files = await readFiles(dir, manifest);
  let registration = await api.json("POST", "/v1/tokenizers", TokenizerRegistration, {
    body: manifest as unknown as Record<string, unknown>,
  });
  const id = registration.tokenizer.id;
  const sent = registration.fileProblems.map((p) => p.path);
  for (const [n, path] of sent.entries()) {
    const encoded = path.split("/").map(encodeURIComponent).join("/");
    registration = await api.json(
      "PUT",
      `/v1/tokenizers/${encodeURIComponent(id)}/files/${encoded}`,
      TokenizerRegistration,
      { body: files.get(path) as Uint8Array, contentType: "application/octet-stream" },
    );
    progress.update(n + 1, sent.length);
  }
  progress.end();
  if (registration.tokenizer.manifestHash !== (await manifestHash(manifest))) {
    throw new CliError(`the edge registered another manifest as ${id}`, EXIT.unavailable);
  }
  return { registration, sent };
}

async function readManifest(dir: string): Promise<TokenizerManifest> {
  const path = join(dir, "manifest.json");
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw usageError(
      `cannot read ${path}: ${(error as Error).message}`,
      "give a folder revq-train wrote",
    );
  }
  try {
    return parseManifest(json);
  } catch (error) {
    throw usageError(`${path} is not a tokenizer manifest: ${(error as Error).message}`);
  }
}

/** Every file the manifest names, read from the folder and checked against its size and SHA-256. */
async function readFiles(
  dir: string,
  manifest: TokenizerManifest,
): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const ref of manifestFiles(manifest)) {
    const target = resolve(dir, ref.path);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(target));
    } catch (error) {
      throw usageError(
        `the manifest names ${ref.path}, which cannot be read: ${(error as Error).message}`,
      );
    }
    if (bytes.length !== ref.bytes || (await sha256Hex(bytes)) !== ref.sha256) {
      throw usageError(
        `${target} is not the file the manifest pins (${ref.bytes} bytes, SHA-256 ${ref.sha256})`,
      );
    }
    files.set(ref.path, bytes);
  }
  return files;
}
