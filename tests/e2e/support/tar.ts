/**
 * A tar archive (POSIX ustar) of regular files, as `tar -cf` writes one: a 512-byte header per
 * file, its bytes padded to 512, two zero blocks at the end. Enough for uploading a dataset.
 */
const BLOCK = 512;

export function tarArchive(files: { name: string; bytes: Uint8Array }[]): Uint8Array {
  const size = files.reduce((sum, f) => sum + BLOCK + Math.ceil(f.bytes.length / BLOCK) * BLOCK, 0);
  const out = new Uint8Array(size + 2 * BLOCK);
  let offset = 0;
  for (const file of files) {
    out.set(header(file.name, file.bytes.length), offset);
    out.set(file.bytes, offset + BLOCK);
    offset += BLOCK + Math.ceil(file.bytes.length / BLOCK) * BLOCK;
  }
  return out;
}

function header(name: string, bytes: number): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const put = (at: number, text: string) => block.set(new TextEncoder().encode(text), at);
  const octal = (value: number, width: number) => `${value.toString(8).padStart(width - 1, "0")}\0`;
  if (new TextEncoder().encode(name).length > 100) throw new Error(`tar: name too long: ${name}`);
  put(0, name);
  put(100, octal(0o644, 8)); // mode
  put(108, octal(0, 8)); // uid
  put(116, octal(0, 8)); // gid
  put(124, octal(bytes, 12)); // size
  put(136, octal(0, 12)); // mtime
  put(148, "        "); // the checksum counts its own field as spaces
  put(156, "0"); // a regular file
  put(257, "ustar\u000000"); // magic and version
  const sum = block.reduce((a, b) => a + b, 0);
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}
