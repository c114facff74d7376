/** The pieces of `revq datasets add` that need no edge: archive sizes, entry names, hints. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packTar } from "modern-tar";
import { afterAll, describe, expect, it } from "vitest";
import type { Api } from "../../cli/src/api.ts";
import { parseCommand } from "../../cli/src/args.ts";
import {
  ADD_OPTIONS,
  addToDataset,
  entryName,
  resumeCommand,
  tarEntryBytes,
} from "../../cli/src/dataset-upload.ts";
import { CliError } from "../../cli/src/errors.ts";
import { Output } from "../../cli/src/output.ts";

const dir = mkdtempSync(join(tmpdir(), "revq-cli-dataset-upload-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("tar batches for a dataset", () => {
  it("counts at least the bytes modern-tar writes for each entry", async () => {
    const names = [
      "1-a.png",
      entryName(12, `/photos/${"x".repeat(95)}.png`),
      entryName(3, `${"long/".repeat(40)}${"y".repeat(150)}.jpg`),
      entryName(4, "ünïcödé-".repeat(10)),
    ];
    for (const name of names) {
      for (const size of [0, 1, 511, 512, 513, 5000]) {
        const one = await packTar([{ header: { name, size }, body: new Uint8Array(size) }]);
        const written = one.length - 1024;
        expect(tarEntryBytes(name, size), `${name} ${size}`).toBeGreaterThanOrEqual(written);
        // Not wastefully more: at most one block of slack.
        expect(tarEntryBytes(name, size) - written, `${name} ${size}`).toBeLessThanOrEqual(512);
      }
    }
  });

  it("names entries by number and file name: never hidden, never a path", () => {
    expect(entryName(7, "photos/cats/a.png")).toBe("7-a.png");
    expect(entryName(1, "/x/._a.png")).toBe("1-._a.png");
  });

  it("says how to add the rest, with the flags that shaped the batches", () => {
    const parsed = parseCommand("datasets", ["--max-images", "50", "--json"], ADD_OPTIONS);
    expect(resumeCommand("dst_1", ["photos", "my cats/it's.png"], parsed, 20)).toBe(
      `revq datasets add dst_1 photos 'my cats/it'\\''s.png' --max-images 50 --skip 20`,
    );
    expect(resumeCommand("dst_1", ["photos"], parseCommand("x", [], ADD_OPTIONS), 0)).toBe(
      "revq datasets add dst_1 photos",
    );
  });

  it("refuses an image no request can carry before sending anything", async () => {
    writeFileSync(join(dir, "big.png"), new Uint8Array(5000));
    const api = {} as Api; // never called
    const error = await addToDataset(
      api,
      new Output(true),
      "dst_1",
      [{ path: join(dir, "big.png"), bytes: 5000 }],
      { limits: { items: 10, bytes: 4096 }, resume: () => "" },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    expect((error as CliError).message).toMatch(
      /big\.png \(4\.9 KiB\) does not fit in one request of at most 4096 bytes \(--max-bytes\)/,
    );
  });
});
