import { env } from "cloudflare:workers";
import {
  bucketKeys,
  type LeasedTask,
  MAX_UPLOADED_TOKEN_RECORDS,
  NPY_MEDIA_TYPE,
  readTokenStream,
  TOKEN_STREAM_MEDIA_TYPE,
  type UploadedTokens,
  writeNpy,
  writeTokenJson,
  writeTokenStream,
} from "@revq/shared";
import { beforeAll, describe, expect, it } from "vitest";
import { lease, newWorld, type World } from "./fixtures/jobs.ts";
import { randomTokenizer, registerTokenizer } from "./fixtures/tokenizer.ts";
import { call, expectProblem, json, newTenant } from "./helpers.ts";

let world: World;
/** The world's tiny tokenizer: T = 4, K = 4, G = 4. */
const params = () => ({
  tokenizerHash: world.tiny.hash,
  tokensPerRecord: 4,
  codesPerGroup: 4,
  groups: 4,
});
const ids = (records: number) => Uint32Array.from({ length: records * 4 }, (_, i) => (i * 7) % 4);

beforeAll(async () => {
  world = await newWorld();
});

function upload(body: BodyInit, type: string, query = "", key = world.apiKey) {
  return call(`/v1/tokens${query}`, {
    method: "POST",
    body,
    headers: { "content-type": type },
    key,
  });
}

async function uploaded(res: Response): Promise<UploadedTokens> {
  expect(res.status).toBe(201);
  return (await res.json()) as UploadedTokens;
}

async function storedIds(tokens: UploadedTokens, tenantId = world.id): Promise<number[]> {
  const object = await env.BUCKET.get(bucketKeys.uploadedTokens(tenantId, tokens.id));
  return [...readTokenStream(new Uint8Array(await (object as R2ObjectBody).arrayBuffer())).tokens];
}

describe("POST /v1/tokens", () => {
  it("keeps a token stream, the JSON document and an int .npy as the same token stream", async () => {
    const sent = ids(3);
    const forms = [
      await upload(writeTokenStream(params(), sent), TOKEN_STREAM_MEDIA_TYPE),
      await upload(JSON.stringify(writeTokenJson(params(), sent)), "application/json"),
      await upload(
        writeNpy(BigInt64Array.from(sent, BigInt), [3, 4]),
        NPY_MEDIA_TYPE,
        `?tokenizer=${world.tokenizerId}`,
      ),
    ];
    for (const res of forms) {
      const tokens = await uploaded(res);
      expect(tokens).toMatchObject({
        id: expect.stringMatching(/^tks_/),
        tokenizer: { id: world.tokenizerId, manifestHash: world.tiny.hash },
        recordCount: 3,
        tokensPerRecord: 4,
      });
      expect(await storedIds(tokens)).toEqual([...sent]);
      const got = await call(`/v1/tokens/${tokens.id}`, { key: world.apiKey });
      expect(await got.json()).toEqual(tokens);
    }
  });

  it("refuses what does not fit its tokenizer, names the problem, and keeps nothing", async () => {
    const before = await env.BUCKET.list({ prefix: `tenants/${world.id}/tokens/` });
    // Ids of another tokenizer's shape: T = 16.
    const other = await randomTokenizer("uploads-other", {
      tokens: 16,
      groups: 16,
      codes: 256,
      dim: 4,
      latent: { channels: 4, height: 4, width: 4 },
    });
    await registerTokenizer(other);
    const otherParams = { ...params(), tokenizerHash: other.hash, tokensPerRecord: 16 };
    const stream = writeTokenStream(otherParams, new Uint32Array(32));
    await expectProblem(
      await upload(stream, TOKEN_STREAM_MEDIA_TYPE, `?tokenizer=${world.tokenizerId}`),
      422,
      "token-stream.bad-tokenizer-hash",
    );
    // An id out of range, in a .npy: K = 4.
    await expectProblem(
      await upload(
        writeNpy(Int32Array.from([0, 1, 2, 4]), [1, 4]),
        NPY_MEDIA_TYPE,
        `?tokenizer=${world.tokenizerId}`,
      ),
      400,
      "token-stream.token-out-of-range",
    );
    await expectProblem(
      await upload(
        writeNpy(Int32Array.from([0, 1, 2]), [1, 3]),
        NPY_MEDIA_TYPE,
        `?tokenizer=${world.tokenizerId}`,
      ),
      400,
      "npy.bad-token-shape",
    );
    await expectProblem(
      await upload(writeNpy(new Int32Array(4), [1, 4]), NPY_MEDIA_TYPE),
      400,
      "invalid-request",
    );
    await expectProblem(
      await upload(writeTokenStream(params(), ids(1)).subarray(0, 66), TOKEN_STREAM_MEDIA_TYPE),
      400,
      "token-stream.truncated",
    );
    await expectProblem(await upload("ids", "text/plain"), 415, "unsupported-media-type");
    await expectProblem(
      await upload(writeNpy(new Int32Array(4), [1, 4]), NPY_MEDIA_TYPE, "?tokenizer=tok_nope"),
      422,
      "tokenizer-not-found",
    );
    const after = await env.BUCKET.list({ prefix: `tenants/${world.id}/tokens/` });
    expect(after.objects.length).toBe(before.objects.length);
  });

  it("refuses more records than a reconstruct job takes before reading them", async () => {
    const header = writeTokenStream(params(), ids(MAX_UPLOADED_TOKEN_RECORDS + 1)).subarray(0, 64);
    await expectProblem(await upload(header, TOKEN_STREAM_MEDIA_TYPE), 413, "too-many-records");
  });

  it("shows a tenant only its own uploads", async () => {
    const tokens = await uploaded(
      await upload(writeTokenStream(params(), ids(1)), TOKEN_STREAM_MEDIA_TYPE),
    );
    const stranger = await newTenant();
    await expectProblem(
      await call(`/v1/tokens/${tokens.id}`, { key: stranger.apiKey }),
      404,
      "tokens-not-found",
    );
    await expectProblem(
      await call("/v1/tokens/../x", { key: world.apiKey }),
      404,
      "route-not-found",
    );
  });
});

describe("a reconstruct job of uploaded tokens", () => {
  it("gives its worker the uploaded stream and one image per record", async () => {
    const tokens = await uploaded(
      await upload(writeTokenStream(params(), ids(2)), TOKEN_STREAM_MEDIA_TYPE),
    );
    const res = await call("/v1/jobs", {
      ...json({ kind: "reconstruct", tokenizer: world.tokenizerId, inputs: { tokens: tokens.id } }),
      key: world.apiKey,
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ inputs: { tokens: tokens.id } });
    const [task] = (await lease(world.workerKey, { kinds: ["reconstruct"] })) as LeasedTask[];
    expect(task.payload).toMatchObject({
      kind: "reconstruct",
      input: { tokens: bucketKeys.uploadedTokens(world.id, tokens.id), recordCount: 2 },
    });
    if (task.payload.kind !== "reconstruct") return;
    expect(task.payload.output.images).toHaveLength(2);
    expect(task.objects.map((o) => o.key)).toEqual([task.payload.input.tokens]);
  });

  it("refuses tokens that are not the tenant's, or of another tokenizer", async () => {
    const create = (tokens: string, tokenizer = world.tokenizerId) =>
      call("/v1/jobs", {
        ...json({ kind: "reconstruct", tokenizer, inputs: { tokens } }),
        key: world.apiKey,
      });
    await expectProblem(await create("tks_00000000000000000000000000"), 422, "tokens-not-found");
    const other = await randomTokenizer("uploads-reconstruct", {
      tokens: 4,
      groups: 4,
      codes: 4,
      dim: 2,
      latent: { channels: 2, height: 2, width: 2 },
    });
    const otherId = await registerTokenizer(other);
    const tokens = await uploaded(
      await upload(writeTokenStream(params(), ids(1)), TOKEN_STREAM_MEDIA_TYPE),
    );
    await expectProblem(await create(tokens.id, otherId), 422, "token-stream.bad-tokenizer-hash");
  });
});
