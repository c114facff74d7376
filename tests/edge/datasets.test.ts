import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { configOf } from "../../edge/src/config.ts";
import { database } from "../../edge/src/db/client.ts";
import { addExisting, addUploads, findDataset } from "../../edge/src/services/datasets.ts";
import { checkImage } from "../../edge/src/services/images.ts";
import {
  added,
  addIds,
  addTar,
  createDataset,
  type Dataset,
  holdings,
  tar,
} from "./fixtures/datasets.ts";
import { IMAGES } from "./fixtures/images.ts";
import { uploadImages } from "./fixtures/jobs.ts";
import { pngClaiming } from "./fixtures/png.ts";
import { call, expectProblem, json, newTenant } from "./helpers.ts";

describe("datasets", () => {
  it("list an upload dataset's images in the order added, a page at a time", async () => {
    const tenant = await newTenant();
    const dataset = await createDataset(tenant.apiKey, { name: "listed" });
    const ids = await uploadImages(tenant.apiKey, 3);
    await added(await addIds(tenant.apiKey, dataset.id, [ids[2], ids[0]]));
    await added(await addIds(tenant.apiKey, dataset.id, [ids[1]]));
    type Page = { images: { id: string; sha256: string }[]; nextCursor: string | null };
    const page = async (query: string) => {
      const res = await call(`/v1/datasets/${dataset.id}/images${query}`, { key: tenant.apiKey });
      expect(res.status).toBe(200);
      return (await res.json()) as Page;
    };
    const first = await page("?limit=2");
    expect(first.images.map((i) => i.id)).toEqual([ids[2], ids[0]]);
    const second = await page(`?limit=2&cursor=${first.nextCursor}`);
    expect(second).toMatchObject({ images: [{ id: ids[1] }], nextCursor: null });

    const images = `/v1/datasets/${dataset.id}/images`;
    for (const cursor of ["nope", btoa('{"after":-1}'), btoa('{"before":"x"}')]) {
      await expectProblem(
        await call(`${images}?cursor=${encodeURIComponent(cursor)}`, { key: tenant.apiKey }),
        400,
        "invalid-cursor",
      );
    }
    await expectProblem(
      await call(`${images}?limit=101`, { key: tenant.apiKey }),
      400,
      "invalid-request",
    );
    const stranger = await newTenant();
    await expectProblem(await call(images, { key: stranger.apiKey }), 404, "dataset-not-found");
    const prefix = await createDataset(tenant.apiKey, { name: "p", prefix: "photos/" });
    await expectProblem(
      await call(`/v1/datasets/${prefix.id}/images`, { key: tenant.apiKey }),
      409,
      "dataset-not-upload",
    );
  });

  it("are created, listed a page at a time, read and deleted (their images stay)", async () => {
    const tenant = await newTenant();
    const made: Dataset[] = [];
    for (const name of ["a", "b", "c"]) made.push(await createDataset(tenant.apiKey, { name }));
    expect(made[0]).toMatchObject({
      name: "a",
      source: "upload",
      prefix: null,
      imageCount: 0,
      bytes: 0,
    });
    expect(made[0].id).toMatch(/^dst_/);
    const prefix = await createDataset(tenant.apiKey, { name: "p", prefix: "photos/2026/" });
    expect(prefix).toMatchObject({ source: "prefix", prefix: "photos/2026/", imageCount: null });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=3&cursor=${cursor}` : "?limit=3";
      const page = (await (await call(`/v1/datasets${query}`, { key: tenant.apiKey })).json()) as {
        datasets: Dataset[];
        nextCursor: string | null;
      };
      seen.push(...page.datasets.map((d) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([prefix.id, ...made.map((d) => d.id).reverse()]);

    const one = await call(`/v1/datasets/${made[1].id}`, { key: tenant.apiKey });
    expect(await one.json()).toEqual(made[1]);
    const stranger = await newTenant();
    await expectProblem(
      await call(`/v1/datasets/${made[1].id}`, { key: stranger.apiKey }),
      404,
      "dataset-not-found",
    );

    const [image] = await uploadImages(tenant.apiKey, 1);
    await added(await addIds(tenant.apiKey, made[1].id, [image]));
    const gone = await call(`/v1/datasets/${made[1].id}`, { method: "DELETE", key: tenant.apiKey });
    expect(gone.status).toBe(204);
    await expectProblem(
      await call(`/v1/datasets/${made[1].id}`, { key: tenant.apiKey }),
      404,
      "dataset-not-found",
    );
    expect((await call(`/v1/images/${image}`, { key: tenant.apiKey })).status).toBe(200);
    expect(await holdings(tenant.id)).toMatchObject({ images: 1, members: 0 });
  });

  it("refuses a prefix that cannot name the tenant's files, saying why", async () => {
    const tenant = await newTenant();
    const post = (body: unknown) => call("/v1/datasets", { ...json(body), key: tenant.apiKey });
    for (const prefix of ["../other-tenant/", "/photos", "a//b", "a/./b", "tab\tname"]) {
      const problem = await expectProblem(await post({ name: "x", prefix }), 422, "invalid-prefix");
      expect(problem.detail).toContain("relative file path");
    }
    await expectProblem(await post({ prefix: "photos/" }), 400, "invalid-request");
    await expectProblem(await post({ name: "x", extra: 1 }), 400, "invalid-request");
    const list = (await (await call("/v1/datasets", { key: tenant.apiKey })).json()) as {
      datasets: unknown[];
    };
    expect(list.datasets).toEqual([]);
  });
});

describe("POST /v1/datasets/{id}/images", () => {
  it("adds each regular file of a tar archive, in archive order, skipping the rest", async () => {
    const tenant = await newTenant();
    const dataset = await createDataset(tenant.apiKey);
    const archive = await tar([
      { header: { name: "cats/", type: "directory", size: 0 } },
      ["cats/b.png", IMAGES.png],
      ["cats/._b.png", "AppleDouble resource fork, not an image"],
      [".DS_Store", "Finder metadata"],
      [".hidden/c.png", IMAGES.png],
      { header: { name: "cats/link.png", type: "symlink", linkname: "b.png", size: 0 } },
      ["cats/a.jpg", IMAGES.jpeg],
      ["dogs/z.webp", IMAGES.webpLossy],
    ]);
    const result = await added(await addTar(tenant.apiKey, dataset.id, archive));
    const bytes = IMAGES.png.length + IMAGES.jpeg.length + IMAGES.webpLossy.length;
    expect(result).toMatchObject({ added: 3, dataset: { id: dataset.id, imageCount: 3, bytes } });
    const formats = [];
    for (const id of result.imageIds) {
      const res = await call(`/v1/images/${id}`, { key: tenant.apiKey });
      formats.push(((await res.json()) as { format: string }).format);
    }
    expect(formats).toEqual(["png", "jpeg", "webp"]);
    const positions = await env.DB.prepare(
      "SELECT image_id FROM dataset_images WHERE dataset_id = ? ORDER BY position",
    )
      .bind(dataset.id)
      .all<{ image_id: string }>();
    expect(positions.results.map((r) => r.image_id)).toEqual(result.imageIds);
    const again = await call(`/v1/datasets/${dataset.id}`, { key: tenant.apiKey });
    expect(await again.json()).toMatchObject({ imageCount: 3, bytes });
  });

  it("adds multipart parts and uploaded images by id after them, and totals both", async () => {
    const tenant = await newTenant();
    const dataset = await createDataset(tenant.apiKey);
    const form = new FormData();
    form.append("images", new File([IMAGES.png], "one.png"));
    form.append("images", new File([IMAGES.progressiveJpeg], "two.jpg", { type: "image/jpeg" }));
    const first = await added(
      await call(`/v1/datasets/${dataset.id}/images`, {
        method: "POST",
        body: form,
        key: tenant.apiKey,
      }),
    );
    expect(first).toMatchObject({ added: 2, dataset: { imageCount: 2 } });
    const ids = await uploadImages(tenant.apiKey, 2);
    const second = await added(await addIds(tenant.apiKey, dataset.id, ids));
    expect(second).toMatchObject({
      added: 2,
      imageIds: ids,
      dataset: {
        imageCount: 4,
        bytes: 3 * IMAGES.png.length + IMAGES.progressiveJpeg.length,
      },
    });
    await expectProblem(
      await addIds(tenant.apiKey, dataset.id, [ids[1]]),
      409,
      "image-already-in-dataset",
    );
    expect(await holdings(tenant.id)).toMatchObject({ images: 4, members: 4, totals: 4 });
  });

  it("honours Idempotency-Key, per dataset", async () => {
    const tenant = await newTenant();
    const dataset = await createDataset(tenant.apiKey);
    const archive = await tar([["a.png", IMAGES.png]]);
    const headers = { "idempotency-key": "add-1" };
    const first = await added(await addTar(tenant.apiKey, dataset.id, archive, headers));
    const replay = await addTar(tenant.apiKey, dataset.id, archive, headers);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await added(replay)).toEqual(first);
    const other = await createDataset(tenant.apiKey);
    await expectProblem(
      await addTar(tenant.apiKey, other.id, archive, headers),
      422,
      "idempotency-key-reused",
    );
    expect(await holdings(tenant.id)).toMatchObject({ images: 1, members: 1, objects: 1 });
  });

  describe("refuses a bad request whole, leaving nothing behind", () => {
    const good = () => [
      ["one.png", IMAGES.png] as [string, Uint8Array],
      ["two.jpg", IMAGES.jpeg] as [string, Uint8Array],
    ];
    const cases: [string, () => Promise<Uint8Array>, number, string, string][] = [
      ["garbage", async () => new TextEncoder().encode("x".repeat(2048)), 400, "invalid-tar", ""],
      [
        "a cut-short archive",
        async () => (await tar(good())).subarray(0, 1200),
        400,
        "invalid-tar",
        '"one.png"',
      ],
      [
        "a corrupted header",
        async () => {
          const archive = await tar(good());
          archive[1024 + 3] ^= 0x20; // the name of the second entry: its checksum fails
          return archive;
        },
        400,
        "invalid-tar",
        '"one.png"',
      ],
      [
        "an entry that is not an image",
        async () => tar([...good(), ["notes.txt", "not an image"]]),
        415,
        "image.unknown-format",
        '"notes.txt"',
      ],
      [
        "a broken image",
        async () => tar([...good(), ["cut.png", IMAGES.png.subarray(0, 40)]]),
        400,
        "image.truncated",
        '"cut.png"',
      ],
      [
        "an entry over the per-image limit",
        async () => tar([...good(), ["big.png", pngClaiming(10, 10, 70_000)]]),
        413,
        "image.too-large",
        '"big.png"',
      ],
      [
        "more entries than one request may add",
        async () => tar([...good(), ...good(), ...good()]),
        413,
        "too-many-images",
        "5 per request",
      ],
      ["no image at all", async () => tar([["._x.png", "x"]]), 422, "no-images", ""],
    ];
    it.each(cases)("%s", async (_, archive, status, code, named) => {
      const tenant = await newTenant();
      const dataset = await createDataset(tenant.apiKey);
      const problem = await expectProblem(
        await addTar(tenant.apiKey, dataset.id, await archive()),
        status,
        code,
      );
      expect(problem.detail).toContain(named);
      expect(await holdings(tenant.id)).toEqual({ images: 0, members: 0, totals: 0, objects: 0 });
    });

    it("a bad multipart part, named; a body over the upload limit; another media type", async () => {
      const tenant = await newTenant();
      const dataset = await createDataset(tenant.apiKey);
      const form = new FormData();
      form.append("images", new File([IMAGES.png], "fine.png"));
      form.append("images", new File([new TextEncoder().encode("text")], "readme.txt"));
      const problem = await expectProblem(
        await call(`/v1/datasets/${dataset.id}/images`, {
          method: "POST",
          body: form,
          key: tenant.apiKey,
        }),
        415,
        "image.unknown-format",
      );
      expect(problem.detail).toContain('images[1] ("readme.txt")');
      await expectProblem(
        await addTar(tenant.apiKey, dataset.id, new Uint8Array(262_145)),
        413,
        "upload-too-large",
      );
      await expectProblem(
        await call(`/v1/datasets/${dataset.id}/images`, {
          method: "POST",
          body: IMAGES.png,
          headers: { "content-type": "image/png" },
          key: tenant.apiKey,
        }),
        415,
        "unsupported-media-type",
      );
      expect(await holdings(tenant.id)).toEqual({ images: 0, members: 0, totals: 0, objects: 0 });
    });

    it("unknown, foreign or repeated ids, too many of them", async () => {
      const tenant = await newTenant();
      const stranger = await newTenant();
      const [foreign] = await uploadImages(stranger.apiKey, 1);
      const [mine] = await uploadImages(tenant.apiKey, 1);
      const dataset = await createDataset(tenant.apiKey);
      const unknown = await expectProblem(
        await addIds(tenant.apiKey, dataset.id, [mine, "img_nope"]),
        422,
        "image-not-found",
      );
      expect(unknown.detail).toContain("img_nope");
      await expectProblem(
        await addIds(tenant.apiKey, dataset.id, [foreign]),
        422,
        "image-not-found",
      );
      await expectProblem(
        await addIds(tenant.apiKey, dataset.id, [mine, mine]),
        400,
        "invalid-request",
      );
      await expectProblem(
        await addIds(tenant.apiKey, dataset.id, ["a", "b", "c", "d", "e", "f"]),
        413,
        "too-many-images",
      );
      await expectProblem(
        await addIds(stranger.apiKey, dataset.id, [foreign]),
        404,
        "dataset-not-found",
      );
      expect(await holdings(tenant.id)).toMatchObject({ images: 1, members: 0, totals: 0 });
    });

    it("a prefix dataset, whose images are the tenant's files", async () => {
      const tenant = await newTenant();
      const dataset = await createDataset(tenant.apiKey, { prefix: "photos/" });
      await expectProblem(
        await addTar(tenant.apiKey, dataset.id, await tar(good())),
        409,
        "dataset-not-upload",
      );
      expect(await holdings(tenant.id)).toMatchObject({ images: 0, objects: 0 });
    });

    it("the later of two adds racing for one dataset, all of it", async () => {
      const tenant = await newTenant();
      const dataset = await createDataset(tenant.apiKey);
      const db = database(env);
      const config = configOf(env);
      // As read by two requests before either committed.
      const stale = await findDataset(db, tenant.id, dataset.id);
      const ids = await uploadImages(tenant.apiKey, 2);
      await added(await addIds(tenant.apiKey, dataset.id, [ids[0]]));
      await expect(addExisting(db, config, stale, [ids[1]])).rejects.toMatchObject({
        status: 409,
        code: "dataset-changed",
      });
      const upload = [await checkImage(IMAGES.png, "", config, "an image")];
      await expect(addUploads(env, db, config, stale, upload)).rejects.toMatchObject({
        status: 409,
        code: "dataset-changed",
      });
      expect(await holdings(tenant.id)).toEqual({ images: 2, members: 1, totals: 1, objects: 2 });
    });

    it("a dataset that would pass its limit", async () => {
      const tenant = await newTenant();
      const dataset = await createDataset(tenant.apiKey);
      const five = [
        ...good(),
        ...good(),
        ["five.webp", IMAGES.webpLossless] as [string, Uint8Array],
      ];
      await added(await addTar(tenant.apiKey, dataset.id, await tar(five)));
      await added(await addTar(tenant.apiKey, dataset.id, await tar(five)));
      const before = await holdings(tenant.id);
      await expectProblem(
        await addTar(tenant.apiKey, dataset.id, await tar([["one.png", IMAGES.png]])),
        422,
        "dataset-full",
      );
      expect(await holdings(tenant.id)).toEqual(before);
      expect(before).toMatchObject({ images: 10, members: 10, totals: 10, objects: 10 });
    });
  });
});
