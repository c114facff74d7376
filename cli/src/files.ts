/** Local files read for a command: a file that cannot be read is a usage error that says why. */
import { readFile } from "node:fs/promises";
import { usageError } from "./errors.ts";

const WHY: Record<string, string> = {
  ENOENT: "no such file",
  EISDIR: "a folder, not a file",
  EACCES: "permission denied",
};

export async function readLocalFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw usageError(`${path}: ${WHY[code] ?? `cannot read it (${code})`}`);
  }
}
