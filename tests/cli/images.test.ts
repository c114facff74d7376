import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { pngNames } from "../../cli/src/commands/reconstruct.ts";
import { CliError } from "../../cli/src/errors.ts";
import { batches, collectImages } from "../../cli/src/images.ts";

const dir = mkdtempSync(join(tmpdir(), "revq-cli-images-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("images from the command line", () => {
  it("takes files as given and searches folders recursively for images, in a stable order", async () => {
    mkdirSync(join(dir, "set", "sub"), { recursive: true });
    for (const name of ["b.PNG", "a.jpg", "notes.txt", "sub/c.webp", "sub/d.jpeg"]) {
      writeFileSync(join(dir, "set", name), "x".repeat(3));
    }
    writeFileSync(join(dir, "single.bin"), "12345");
    const found = await collectImages([join(dir, "single.bin"), join(dir, "set")]);
    expect(found.map((f) => f.path.slice(dir.length + 1))).toEqual([
      "single.bin",
      "set/a.jpg",
      "set/b.PNG",
      "set/sub/c.webp",
      "set/sub/d.jpeg",
    ]);
    expect(found[0].bytes).toBe(5);
  });

  it("refuses what is not there, an empty folder and no arguments, as usage errors", async () => {
    mkdirSync(join(dir, "empty"));
    const cases: [string[], RegExp][] = [
      [[], /^no images given$/],
      [[join(dir, "missing.png")], /missing\.png: no such file or folder$/],
      [[join(dir, "empty")], /empty: no \.png, \.jpg, \.jpeg or \.webp files in this folder$/],
    ];
    for (const [args, message] of cases) {
      const error = await collectImages(args).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(2);
      expect((error as CliError).message).toMatch(message);
    }
  });

  it("makes batches under both limits, in order", () => {
    const limits = { items: 64, bytes: 60 * 1024 * 1024 };
    const bytesOf = (image: { bytes: number }) => image.bytes;
    const small = Array.from({ length: 130 }, (_, i) => ({ path: `${i}.png`, bytes: 1000 }));
    expect(batches(small, limits, bytesOf).map((b) => b.length)).toEqual([64, 64, 2]);
    const big = [25, 25, 25, 70, 1].map((mib, i) => ({ path: `${i}`, bytes: mib * 1024 * 1024 }));
    // A single image over the budget still goes (alone): the edge judges it.
    expect(batches(big, limits, bytesOf).map((b) => b.map((i) => i.path))).toEqual([
      ["0", "1"],
      ["2"],
      ["3"],
      ["4"],
    ]);
  });

  it("names reconstructions after their images, numbered when two share a name", () => {
    expect(pngNames(["x/cat.jpg", "dog.webp"])).toEqual(["cat.png", "dog.png"]);
    expect(pngNames(["a/cat.jpg", "b/cat.png"])).toEqual(["0000-cat.png", "0001-cat.png"]);
  });
});
