/**
 * The files of a tar archive (POSIX ustar, with pax and GNU long names), read one at a time with
 * modern-tar's streaming decoder in strict mode: every header's checksum is checked, and an
 * archive cut short or with trailing garbage is refused, so that a broken upload is an error
 * instead of a silently shorter dataset.
 */
import { createTarDecoder, type ParsedTarEntry } from "modern-tar";
import { HttpProblem } from "../problem.ts";

export type TarFile = { name: string; bytes: Uint8Array };

/**
 * Whether an entry is a hidden file or inside a hidden folder: macOS tar puts an AppleDouble
 * `._name` beside every file it archives, and `.DS_Store` files come along too.
 */
function hidden(name: string): boolean {
  return name.split("/").some((segment) => segment.startsWith(".") && segment !== ".");
}

/** A 400 saying where the archive broke: `where` is "at its start", "in entry x"... */
function invalidTar(where: string, error: unknown): HttpProblem {
  const reason = error instanceof Error ? error.message : String(error);
  return new HttpProblem(
    400,
    "invalid-tar",
    `The body is not a valid tar archive ${where}: ${reason}`,
  );
}

/**
 * The archive's regular files in archive order, each read whole; directories, links, devices and
 * hidden files are skipped. A file over `maxBytes` is refused (413) before it is read.
 */
export async function* tarFiles(
  archive: ReadableStream<Uint8Array>,
  maxBytes: number,
): AsyncGenerator<TarFile> {
  const reader = archive.pipeThrough(createTarDecoder({ strict: true })).getReader();
  let last: string | undefined;
  try {
    for (;;) {
      // Spelled out: ReadableStreamReadResult is a Workers global that Node's types (the fuzz
      // run imports this file) do not declare.
      let next: { done: true; value?: unknown } | { done: false; value: ParsedTarEntry };
      try {
        next = await reader.read();
      } catch (error) {
        const where = last === undefined ? "at its start" : `after entry ${JSON.stringify(last)}`;
        throw invalidTar(where, error);
      }
      if (next.done) return;
      const { header, body } = next.value;
      last = header.name;
      if (header.type !== "file" || hidden(header.name)) {
        await body.cancel();
        continue;
      }
      if (header.size > maxBytes) {
        await body.cancel();
        throw new HttpProblem(
          413,
          "image.too-large",
          `tar entry ${JSON.stringify(header.name)} has ${header.size} bytes; the limit is ${maxBytes} per image.`,
        );
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await new Response(body).arrayBuffer());
      } catch (error) {
        throw invalidTar(`in entry ${JSON.stringify(header.name)}`, error);
      }
      yield { name: header.name, bytes };
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
