/**
 * Where a command's words go. Results go to stdout: one JSON document with --json, else lines
 * for people. Progress and notes go to stderr, so that stdout stays clean for pipes; progress
 * bars only when stderr is a terminal.
 */
import { writeFile } from "node:fs/promises";
import { Progress } from "./progress.ts";

export class Output {
  readonly json: boolean;
  private readonly tty: boolean;

  constructor(json: boolean, tty = process.stderr.isTTY === true) {
    this.json = json;
    this.tty = tty && !json;
  }

  /** A result line for people (nothing with --json). */
  line(text = ""): void {
    if (!this.json) process.stdout.write(`${text}\n`);
  }

  /** The result for scripts (only with --json). */
  result(value: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A note on the way (stderr; not with --json). */
  note(text: string): void {
    if (!this.json) process.stderr.write(`${text}\n`);
  }

  progress(label: string): Progress {
    return new Progress(label, this.tty ? process.stderr : undefined);
  }
}

/** Writes a file, or stdout for "-". */
export async function writeOutput(path: string, bytes: Uint8Array): Promise<void> {
  if (path === "-") {
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(bytes, (error) => (error ? reject(error) : resolve())),
    );
    return;
  }
  await writeFile(path, bytes);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
