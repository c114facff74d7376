import { env } from "cloudflare:workers";
import {
  createCodebook,
  encodeHeader,
  lookupCodes,
  makeTokenStreamHeader,
  parseSafetensors,
  readNpy,
  readTensor,
  readTokenJson,
  TOKEN_STREAM_MEDIA_TYPE,
  type TokenStreamParams,
  tokenStreamByteLength,
  writeTokenJson,
  writeTokenStream,
} from "@revq/shared";
import { beforeAll, describe, expect, it } from "vitest";
import { codebookSource, gatherCodes } from "../../edge/src/services/codebook-reader.ts";
import {
  createEncodeJob,
  lease,
  newWorld,
  type World,
  workerCall,
  writeTokensFor,
} from "./fixtures/jobs.ts";
import { randomTokenizer, registerTokenizer, type TinyTokenizer } from "./fixtures/tokenizer.ts";
import { call, expectProblem, newTenant } from "./helpers.ts";

// 16 tokens of 4 values (latent 4×4×4), 16 groups of 256 codes: 64 KB of codebook, enough rows
// for the decode to need several coalesced reads under the test limits (5 reads, no gap merging).
const SHAPE = {
  tokens: 16,
  groups: 16,
  codes: 256,
  dim: 4,
  latent: { channels: 4, height: 4, width: 4 },
};

let mid: TinyTokenizer;
let tenant: Awaited<ReturnType<typeof newTenant>>;

beforeAll(async () => {
  mid = await randomTokenizer("decode-mid", SHAPE);
  await registerTokenizer(mid);
  tenant = await newTenant();
});

const params = () => ({
  tokenizerHash: mid.hash,
  tokensPerRecord: 16,
  codesPerGroup: 256,
  groups: 16,
});

function randomIds(records: number, seed: number): Uint32Array {
  return Uint32Array.from(
    { length: records * 16 },
    (_, i) => (i * 2654435761 + seed * 40503) % 256,
  );
}

function decode(body: BodyInit, type: string, query = "", key = tenant.apiKey) {
  return call(`/v1/decode${query}`, {
    method: "POST",
    body,
    headers: { "content-type": type },
    key,
  });
}

describe("POST /v1/decode to latents", () => {
  it("gives exactly the codebook vectors, shaped (N, C, H, W), from a few coalesced range reads", async () => {
    const ids = randomIds(3, 7);
    const res = await decode(writeTokenStream(params(), ids), TOKEN_STREAM_MEDIA_TYPE);
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("revq-codebook-range-reads"))).toBeLessThanOrEqual(5);
    expect(Number(res.headers.get("revq-codebook-range-reads"))).toBeGreaterThan(1);
    const npy = readNpy(new Uint8Array(await res.arrayBuffer()));
    expect(npy.dtype).toBe("<f4");
    expect(npy.shape).toEqual([3, 4, 4, 4]);
    const expected = lookupCodes(createCodebook(16, 256, 4, mid.codebook), ids, 16);
    expect(Array.from(npy.data as Float32Array)).toEqual(Array.from(expected));
  });

  it("streams each read through one small reused buffer, rows across its ends included", async () => {
    const ids = randomIds(8, 3);
    const source = await codebookSource(env.BUCKET, mid.hash, mid.manifest);
    // One read of nearly the whole codebook, through 100 bytes at a time: 16-byte rows keep
    // falling across the buffer's end.
    const { codes, stats } = await gatherCodes(
      source,
      ids,
      16,
      { mergeGap: 1 << 20, maxRanges: 1 },
      100,
    );
    expect(stats.rangeReads).toBe(1);
    expect(stats.bytesRead).toBeGreaterThan(60_000);
    const expected = lookupCodes(createCodebook(16, 256, 4, mid.codebook), ids, 16);
    expect(Array.from(codes)).toEqual(Array.from(expected));
  });

  it("writes safetensors with the tokenizer hash in the metadata", async () => {
    const ids = randomIds(2, 3);
    const res = await decode(
      writeTokenStream(params(), ids),
      TOKEN_STREAM_MEDIA_TYPE,
      "?format=safetensors",
    );
    const file = parseSafetensors(new Uint8Array(await res.arrayBuffer()));
    expect(file.metadata).toMatchObject({ tokenizer: mid.hash, space: "normalized" });
    const latents = readTensor(file, "latents");
    expect(latents.shape).toEqual([2, 4, 4, 4]);
    expect(latents.data).toEqual(lookupCodes(createCodebook(16, 256, 4, mid.codebook), ids, 16));
  });

  it("takes the JSON token document too", async () => {
    const ids = randomIds(1, 11);
    const res = await decode(JSON.stringify(writeTokenJson(params(), ids)), "application/json");
    const npy = readNpy(new Uint8Array(await res.arrayBuffer()));
    expect(npy.data).toEqual(lookupCodes(createCodebook(16, 256, 4, mid.codebook), ids, 16));
  });
});

describe("POST /v1/decode to ids", () => {
  it("converts a stream to JSON or .npy ids", async () => {
    const ids = randomIds(2, 5);
    const stream = writeTokenStream(params(), ids);
    const asJson = await decode(stream, TOKEN_STREAM_MEDIA_TYPE, "?output=ids");
    expect(readTokenJson(await asJson.json()).tokens).toEqual(ids);
    const asNpy = await decode(stream, TOKEN_STREAM_MEDIA_TYPE, "?output=ids&format=npy");
    const npy = readNpy(new Uint8Array(await asNpy.arrayBuffer()));
    expect(npy).toMatchObject({ dtype: "<i4", shape: [2, 16] });
    expect(Array.from(npy.data as Int32Array)).toEqual(Array.from(ids));
  });
});

describe("decoding a job's tokens", () => {
  let world: World;
  beforeAll(async () => {
    world = await newWorld();
  });

  it("decodes a finished encode job by id", async () => {
    await createEncodeJob(world, 2);
    const [task] = await lease(world.workerKey);
    const ids = await writeTokensFor(task, world.tiny);
    await workerCall(world.workerKey, `/tasks/${task.taskId}/complete`, {
      leaseId: task.leaseId,
      result: { kind: "encode" },
    });
    const res = await decode(
      JSON.stringify({ job: task.jobId }),
      "application/json",
      "",
      world.apiKey,
    );
    const npy = readNpy(new Uint8Array(await res.arrayBuffer()));
    expect(npy.shape).toEqual([2, 2, 2, 2]);
    expect(npy.data).toEqual(lookupCodes(createCodebook(4, 4, 2, world.tiny.codebook), ids, 4));
    const stranger = await newTenant();
    await expectProblem(
      await decode(JSON.stringify({ job: task.jobId }), "application/json", "", stranger.apiKey),
      422,
      "job-not-found",
    );
  });
});

describe("POST /v1/decode refuses", () => {
  it("a tokenizer that is not the one the tokens name", async () => {
    const other = await randomTokenizer("decode-other", SHAPE, 2);
    const otherId = await registerTokenizer(other);
    const stream = writeTokenStream(params(), randomIds(1, 1));
    const problem = await expectProblem(
      await decode(stream, TOKEN_STREAM_MEDIA_TYPE, `?tokenizer=${otherId}`),
      422,
      "token-stream.bad-tokenizer-hash",
    );
    expect(problem.detail).toContain(mid.hash);
  });

  it("tokens of an unknown tokenizer, or with another shape than their tokenizer's", async () => {
    const unknown = writeTokenStream(
      { ...params(), tokenizerHash: "cd".repeat(32) },
      randomIds(1, 1),
    );
    await expectProblem(await decode(unknown, TOKEN_STREAM_MEDIA_TYPE), 422, "tokenizer-not-found");
    const reshaped = writeTokenStream(
      { ...params(), codesPerGroup: 128 },
      randomIds(1, 1).map((id) => id % 128),
    );
    await expectProblem(
      await decode(reshaped, TOKEN_STREAM_MEDIA_TYPE),
      422,
      "token-stream.tokenizer-mismatch",
    );
  });

  it("malformed tokens, unknown media types, bad queries and too many records", async () => {
    const stream = writeTokenStream(params(), randomIds(1, 1));
    const corrupted = stream.slice();
    corrupted[70] ^= 0xff;
    await expectProblem(
      await decode(corrupted, TOKEN_STREAM_MEDIA_TYPE),
      400,
      "token-stream.bad-record-crc",
    );
    await expectProblem(
      await decode(new TextEncoder().encode("nope"), TOKEN_STREAM_MEDIA_TYPE),
      400,
      "token-stream.bad-magic",
    );
    await expectProblem(await decode(stream, "text/plain"), 415, "unsupported-media-type");
    await expectProblem(
      await decode(stream, TOKEN_STREAM_MEDIA_TYPE, "?output=pixels"),
      400,
      "invalid-request",
    );
    await expectProblem(
      await decode(stream, TOKEN_STREAM_MEDIA_TYPE, "?output=ids&format=safetensors"),
      400,
      "invalid-request",
    );
    await expectProblem(await decode("{not json", "application/json"), 400, "bad-request");
    await expectProblem(
      await decode(JSON.stringify({ format: "x" }), "application/json"),
      400,
      "token-json.invalid",
    );
    const many = writeTokenStream(params(), randomIds(9, 1));
    await expectProblem(await decode(many, TOKEN_STREAM_MEDIA_TYPE), 413, "too-many-records");
    await expectProblem(
      await decode(stream, TOKEN_STREAM_MEDIA_TYPE, "", tenant.workerKey),
      403,
      "wrong-key-kind",
    );
  });
});

describe("POST /v1/decode reads the header first", () => {
  /** A stream of `records` records under `p`'s header, every record zeros: each CRC is wrong. */
  function unreadable(p: TokenStreamParams, records: number): Uint8Array {
    const header = makeTokenStreamHeader(p, records);
    const bytes = new Uint8Array(tokenStreamByteLength(header));
    bytes.set(encodeHeader(header));
    return bytes;
  }

  it("refuses too many records, or tokens that do not fit the tokenizer, before parsing a record", async () => {
    // Each would be token-stream.bad-record-crc if a record were read before the checks.
    await expectProblem(
      await decode(unreadable(params(), 9), TOKEN_STREAM_MEDIA_TYPE),
      413,
      "too-many-records",
    );
    await expectProblem(
      await decode(unreadable({ ...params(), codesPerGroup: 128 }, 1), TOKEN_STREAM_MEDIA_TYPE),
      422,
      "token-stream.tokenizer-mismatch",
    );
    await expectProblem(
      await decode(
        unreadable({ ...params(), tokenizerHash: "cd".repeat(32) }, 1),
        TOKEN_STREAM_MEDIA_TYPE,
      ),
      422,
      "tokenizer-not-found",
    );
  });

  it("refuses 8 MiB of 1-bit ids (268 MB as u32) having read the header and a chunk", async () => {
    const p = { tokenizerHash: mid.hash, tokensPerRecord: 65536, codesPerGroup: 2, groups: 1 };
    const header = makeTokenStreamHeader(p, 1023);
    const length = tokenStreamByteLength(header);
    expect(length).toBeGreaterThan(8_000_000);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (sent === length) return controller.close();
          const chunk =
            sent === 0 ? encodeHeader(header) : new Uint8Array(Math.min(65536, length - sent));
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      },
      { highWaterMark: 0 },
    );
    const res = await call("/v1/decode", {
      method: "POST",
      body,
      headers: { "content-type": TOKEN_STREAM_MEDIA_TYPE, "content-length": String(length) },
      key: tenant.apiKey,
      duplex: "half",
    } as RequestInit);
    await expectProblem(res, 413, "too-many-records");
    expect(sent).toBeLessThanOrEqual(64 + 2 * 65536);
  });
});
