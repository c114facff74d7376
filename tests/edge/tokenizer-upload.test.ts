/**
 * A tokenizer trained offline, uploaded under a tenant's own key: the manifest, then its files;
 * names unique among the tenant's tokenizers; files the tenant can already see are copied.
 */
import { env } from "cloudflare:workers";
import { bucketKeys, type TokenizerRegistration } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { newWorld, uploadImages, type World } from "./fixtures/jobs.ts";
import {
  randomTokenizer,
  registerOwnTokenizer,
  registerTokenizer,
  type TinyTokenizer,
} from "./fixtures/tokenizer.ts";
import { call, expectProblem, json } from "./helpers.ts";

const postManifest = (world: World, manifest: unknown) =>
  call("/v1/tokenizers", { ...json(manifest), key: world.apiKey });

const putFile = (world: World, id: string, path: string, body: BodyInit) =>
  call(`/v1/tokenizers/${id}/files/${path}`, { method: "PUT", body, key: world.apiKey });

async function registration(res: Response, status: number): Promise<TokenizerRegistration> {
  expect(res.status).toBe(status);
  return (await res.json()) as TokenizerRegistration;
}

/**
 * A tokenizer whose stats file (mean 0, std 1) is byte for byte that of any other of the same
 * latent size: `channels` (of a 2×2 latent) picks a size no other test file uses.
 */
const tokenizer = (name: string, seed: number, channels = 3) =>
  randomTokenizer(
    name,
    { tokens: 4, groups: 4, codes: 4, dim: channels, latent: { channels, height: 2, width: 2 } },
    seed,
  );

const bytesOf = (t: TinyTokenizer, path: string) => t.files.get(path) as Uint8Array;

describe("uploading a tokenizer trained offline", () => {
  it("registers the manifest, takes each file, and becomes ready for jobs", async () => {
    const world = await newWorld();
    const own = await tokenizer("offline-upload", 101);
    const first = await registration(await postManifest(world, own.manifest), 201);
    expect(first.tokenizer).toMatchObject({
      name: "offline-upload",
      owner: "tenant",
      status: "pending",
      manifestHash: own.hash,
    });
    expect(first.fileProblems.map((p) => p.path).sort()).toEqual([
      "codebook.safetensors",
      "stats.safetensors",
    ]);
    const id = first.tokenizer.id;

    const afterOne = await registration(
      await putFile(world, id, "codebook.safetensors", bytesOf(own, "codebook.safetensors")),
      200,
    );
    expect(afterOne.tokenizer.status).toBe("pending");
    expect(afterOne.fileProblems.map((p) => p.path)).toEqual(["stats.safetensors"]);
    const done = await registration(
      await putFile(world, id, "stats.safetensors", bytesOf(own, "stats.safetensors")),
      200,
    );
    expect(done).toMatchObject({ tokenizer: { status: "ready" }, fileProblems: [] });

    // The same manifest again is the same tokenizer; a job can use it by its name.
    const again = await registration(await postManifest(world, own.manifest), 200);
    expect(again.tokenizer.id).toBe(id);
    const images = await uploadImages(world.apiKey, 1);
    const job = await call("/v1/jobs", {
      ...json({ kind: "encode", tokenizer: "offline-upload", inputs: { images } }),
      key: world.apiKey,
    });
    expect(job.status).toBe(202);
    expect(((await job.json()) as { tokenizer: { id: string } }).tokenizer.id).toBe(id);
  });

  it("refuses a bad manifest, a bad name or a name the tenant uses, and keeps nothing", async () => {
    const world = await newWorld();
    await registerOwnTokenizer(world.id, await tokenizer("taken-name", 102));
    const clash = await tokenizer("taken-name", 103);
    await expectProblem(await postManifest(world, clash.manifest), 409, "tokenizer-name-taken");
    const slash = await tokenizer("a/b", 104);
    await expectProblem(await postManifest(world, slash.manifest), 400, "invalid-request");
    await expectProblem(
      await postManifest(world, { ...clash.manifest, name: "free", quantizer: { tokens: 0 } }),
      422,
      "manifest.invalid",
    );
    await expectProblem(await postManifest(world, [1, 2]), 400, "invalid-request");
    const listed = await call("/v1/tokenizers?status=all", { key: world.apiKey });
    const names = ((await listed.json()) as { tokenizers: { name: string }[] }).tokenizers.map(
      (t) => t.name,
    );
    expect(names.filter((n) => n === "taken-name")).toHaveLength(1);
    expect(names).not.toContain("free");
    expect(await env.BUCKET.head(bucketKeys.tokenizerManifest(clash.hash))).toBeNull();
  });

  it("refuses a file of the wrong size or bytes, and files of tokenizers not its own", async () => {
    const world = await newWorld();
    const own = await tokenizer("offline-bad-files", 105);
    const { tokenizer: row } = await registration(await postManifest(world, own.manifest), 201);
    const codebook = bytesOf(own, "codebook.safetensors");

    await expectProblem(
      await putFile(world, row.id, "codebook.safetensors", codebook.slice(1)),
      422,
      "file-size-mismatch",
    );
    const flipped = codebook.slice();
    flipped[flipped.length - 1] ^= 1;
    await expectProblem(
      await putFile(world, row.id, "codebook.safetensors", flipped),
      422,
      "file-hash-mismatch",
    );
    expect(
      await env.BUCKET.head(bucketKeys.tokenizerFile(own.hash, "codebook.safetensors")),
    ).toBeNull();
    await expectProblem(
      await putFile(world, row.id, "other.safetensors", codebook),
      404,
      "file-not-in-manifest",
    );
    // Through a transform, a stream's length is unknown: no Content-Length goes with it.
    const unsized = new Blob([codebook]).stream().pipeThrough(new TransformStream());
    await expectProblem(
      await putFile(world, row.id, "codebook.safetensors", unsized),
      411,
      "length-required",
    );

    // Another tenant's tokenizer and a public one are not this tenant's to fill.
    const stranger = await newWorld();
    await expectProblem(
      await putFile(stranger, row.id, "codebook.safetensors", codebook),
      404,
      "tokenizer-not-found",
    );
    await expectProblem(
      await putFile(world, world.tokenizerId, "codebook.safetensors", codebook),
      404,
      "tokenizer-not-found",
    );
    const shown = await call(`/v1/tokenizers/${row.id}`, { key: world.apiKey });
    expect(((await shown.json()) as { status: string }).status).toBe("pending");
  });

  it("copies files the tenant can already see, and only those", async () => {
    // A public tokenizer's stats file is the same bytes as the upload's: it is copied.
    await registerTokenizer(await tokenizer("offline-public-base", 106, 5));
    const world = await newWorld();
    const own = await tokenizer("offline-reuses", 107, 5);
    const first = await registration(await postManifest(world, own.manifest), 201);
    expect(first.fileProblems.map((p) => p.path)).toEqual(["codebook.safetensors"]);
    const copied = await env.BUCKET.get(bucketKeys.tokenizerFile(own.hash, "stats.safetensors"));
    expect(new Uint8Array((await copied?.arrayBuffer()) ?? [])).toEqual(
      bytesOf(own, "stats.safetensors"),
    );

    // A codebook only another tenant holds is not copied: the tenant must send it.
    const stranger = await newWorld();
    const theirs = await tokenizer("offline-theirs", 108, 5);
    await registerOwnTokenizer(stranger.id, theirs);
    const same = { ...theirs.manifest, name: "offline-not-mine" };
    const mine = await registration(await postManifest(world, same), 201);
    expect(mine.fileProblems.map((p) => p.path)).toEqual(["codebook.safetensors"]);
  });
});

describe("a tenant's tokenizer names", () => {
  it("stay unique when a training registers a name the tenant already uses", async () => {
    const world = await newWorld();
    const first = await registerOwnTokenizer(world.id, await tokenizer("trained-twice", 109));
    const second = await registerOwnTokenizer(world.id, await tokenizer("trained-twice", 110));
    expect(first.name).toBe("trained-twice");
    expect(second.name).toBe(`trained-twice (${second.id})`);
    const byName = await call("/v1/tokenizers/trained-twice", { key: world.apiKey });
    expect(((await byName.json()) as { id: string }).id).toBe(first.id);
  });
});
