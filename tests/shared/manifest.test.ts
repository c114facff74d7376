import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../shared/src/errors.ts";
import { canonicalJson } from "../../shared/src/protocol/canonical-json.ts";
import {
  MANIFEST_SCHEMA_VERSION,
  manifestHash,
  parseManifest,
  type TokenizerManifest,
} from "../../shared/src/protocol/manifest.ts";
import { sha256Hex } from "../../shared/src/protocol/sha256.ts";

const hex = (c: string) => c.repeat(64);

/** The paper's configuration: DC-AE f32c32 at 256×256, 512 tokens of 4, one codebook per token. */
function paperManifest(): TokenizerManifest {
  return {
    schema: MANIFEST_SCHEMA_VERSION,
    name: "revq-dcae-f32c32-512x16384",
    description: "ReVQ on DC-AE f32c32, ImageNet 256x256",
    vae: {
      name: "dc-ae-f32c32-sana-1.0",
      kind: "dcae",
      inputResolution: { height: 256, width: 256 },
      latentShape: { channels: 32, height: 8, width: 8 },
      config: { latent_channels: 32, scaling_factor: 0.41407, qkv_multiscales: [[], [], [5]] },
    },
    quantizer: { tokens: 512, groups: 512, codeDim: 4, codesPerGroup: 16384 },
    rectifier: {
      architecture: "dcae-decoder-stage",
      channels: 512,
      blocks: 2,
      attentionHeadDim: 32,
      qkvMultiscales: [5],
      norm: "rms_norm",
      act: "silu",
    },
    files: {
      stats: {
        path: "stats.safetensors",
        bytes: 16528,
        sha256: hex("a"),
        tensors: ["mean", "std"],
      },
      codebook: { path: "codebook.safetensors", bytes: 33554520, sha256: hex("b") },
      rectifier: { path: "weights/rectifier.safetensors", bytes: 9000000, sha256: hex("c") },
    },
    training: {
      dataset: { name: "imagenet-1k", images: 1281167 },
      epochs: 100,
      batchSize: 256,
      seed: 42,
      learningRates: { quantizer: 0.01, rectifier: 0.0005 },
      createdAt: "2026-11-26T12:00:00Z",
      software: { name: "revq", version: "0.1.0" },
      metrics: { rFID: 1.06, usage: 0.998 },
    },
  };
}

/** A deep copy with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  );
}

/** Every path to a leaf (number, string, boolean) of a JSON value. */
function leafPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== "object" || value === null) return [path];
  return Object.entries(value).flatMap(([k, v]) =>
    leafPaths(v, [...path, Array.isArray(value) ? Number(k) : k]),
  );
}

/** A manifest as a bag of fields that tests may break in any way. */
// biome-ignore lint/suspicious/noExplicitAny: tests reach into arbitrary fields to break them
type Editable = Record<string, any>;

/** A copy of the paper manifest changed by `edit`, which may mutate it freely. */
function edited(edit: (m: Editable) => void): unknown {
  const copy = structuredClone(paperManifest()) as Editable;
  edit(copy);
  return copy;
}

function manifestError(json: unknown): FormatError {
  try {
    parseManifest(json);
  } catch (error) {
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).format).toBe("manifest");
    expect((error as FormatError).code).toBe("invalid");
    return error as FormatError;
  }
  throw new Error("the manifest was accepted");
}

describe("sha256Hex", () => {
  it("matches the FIPS 180-2 test vectors", async () => {
    const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    expect(await sha256Hex("abc")).toBe(abc);
    expect(await sha256Hex(new TextEncoder().encode("abc"))).toBe(abc);
    expect(await sha256Hex(new TextEncoder().encode("abc").buffer)).toBe(abc);
    expect(await sha256Hex("")).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    expect(await sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("hashes a string as UTF-8", async () => {
    expect(await sha256Hex("é")).toBe(await sha256Hex(Uint8Array.of(0xc3, 0xa9)));
  });

  it("hashes only the bytes a view covers", async () => {
    const buffer = new TextEncoder().encode("xxabcxx");
    expect(await sha256Hex(buffer.subarray(2, 5))).toBe(await sha256Hex("abc"));
  });
});

describe("canonicalJson", () => {
  it("sorts keys by UTF-16 code units at every level, without whitespace", () => {
    // The property-sorting example of RFC 8785, section 3.2.3.
    const keys = ["\u20ac", "\r", "\ufb33", "1", "\ud83d\ude00", "\u0080", "\u00f6"];
    const object = Object.fromEntries(keys.map((k) => [k, k.length]));
    const order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"];
    expect(canonicalJson(object)).toBe(
      `{${order.map((k) => `${JSON.stringify(k)}:${k.length}`).join(",")}}`,
    );
    expect(canonicalJson({ b: [{ z: 1, a: 2 }], a: { y: null, x: true } })).toBe(
      '{"a":{"x":true,"y":null},"b":[{"a":2,"z":1}]}',
    );
  });

  it("writes numbers and strings as ECMAScript does", () => {
    expect(canonicalJson([1e30, 4.5, 0.002, 1e-27, -0, 333333333.3333333, 2 ** 53])).toBe(
      "[1e+30,4.5,0.002,1e-27,0,333333333.3333333,9007199254740992]",
    );
    expect(canonicalJson('\u2028"\\\n\u0001é')).toBe('"\u2028\\"\\\\\\n\\u0001é"');
  });

  it("leaves out undefined properties", () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it("refuses values that are not JSON", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: [unknown, RegExp][] = [
      [Number.NaN, /\$: NaN is not a finite number/],
      [{ a: [1, Number.POSITIVE_INFINITY] }, /\$\.a\[1\]: Infinity/],
      [[undefined], /\$\[0\]: a undefined/],
      // biome-ignore lint/suspicious/noSparseArray: a hole is the point
      [[1, , 2], /\$\[1\]/],
      [1n, /bigint/],
      [() => 1, /function/],
      [new Date(0), /Date/],
      [new Map(), /Map/],
      [cyclic, /\$\.self: the value contains itself/],
    ];
    for (const [value, message] of bad) {
      expect(() => canonicalJson(value)).toThrow(message);
    }
  });

  it("accepts shared (non-cyclic) references and null-prototype objects", () => {
    const shared = { x: 1 };
    expect(canonicalJson([shared, shared])).toBe('[{"x":1},{"x":1}]');
    expect(canonicalJson(Object.assign(Object.create(null), { b: 1, a: 2 }))).toBe('{"a":2,"b":1}');
  });

  it("round-trips through JSON.parse to an equal value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });
});

describe("parseManifest", () => {
  it("accepts a valid manifest and returns it unchanged", () => {
    expect(parseManifest(paperManifest())).toEqual(paperManifest());
  });

  it("accepts a parsed JSON document", () => {
    expect(parseManifest(JSON.parse(JSON.stringify(paperManifest())))).toEqual(paperManifest());
  });

  it("accepts a residual rectifier", () => {
    const residual = edited((m) => {
      m.rectifier.residual = true;
    });
    expect(parseManifest(residual)).toEqual(residual);
  });

  it("accepts a quantizer learning rate of 0: a rectifier trained alone on a kept codebook", () => {
    const frozen = edited((m) => {
      m.training.learningRates.quantizer = 0;
    });
    expect(parseManifest(frozen)).toEqual(frozen);
  });

  it("accepts a minimal manifest: identity rectifier, no training block, one file for two refs", () => {
    const ref = { path: "tokenizer.safetensors", bytes: 4096, sha256: hex("d") };
    const manifest = {
      schema: MANIFEST_SCHEMA_VERSION,
      name: "tiny",
      vae: {
        name: "small-conv-v1",
        kind: "small-conv",
        inputResolution: { height: 64, width: 64 },
        latentShape: { channels: 4, height: 4, width: 4 },
      },
      quantizer: { tokens: 16, groups: 4, codeDim: 4, codesPerGroup: 32 },
      rectifier: { architecture: "identity" },
      files: { stats: ref, codebook: ref },
    };
    expect(parseManifest(manifest)).toEqual(manifest);
  });

  it.each<[string, (m: Editable) => void, RegExp]>([
    [
      "a latent size other than tokens·codeDim",
      (m) => {
        m.quantizer.codeDim = 8;
      },
      /^manifest: quantizer: tokens·codeDim = 512·8 = 4096 must equal the latent size vae\.latentShape channels·height·width = 32·8·8 = 2048$/,
    ],
    [
      "more groups than tokens",
      (m) => {
        m.quantizer.groups = 1024;
      },
      /quantizer\.groups: groups \(1024\) cannot exceed tokens \(512\)/,
    ],
    [
      "tokens not a multiple of groups",
      (m) => {
        m.quantizer.groups = 3;
      },
      /quantizer\.groups: tokens \(512\) must be a multiple of groups \(3\)/,
    ],
    [
      "zero groups",
      (m) => {
        m.quantizer.groups = 0;
      },
      /quantizer\.groups: Too small/,
    ],
    [
      "one code per group",
      (m) => {
        m.quantizer.codesPerGroup = 1;
      },
      /quantizer\.codesPerGroup: a codebook needs at least 2 codes/,
    ],
    [
      "more than 2^24 codes per group",
      (m) => {
        m.quantizer.codesPerGroup = 2 ** 24 + 1;
      },
      /quantizer\.codesPerGroup: at most 2\^24/,
    ],
    [
      "a fractional size",
      (m) => {
        m.quantizer.tokens = 512.5;
      },
      /quantizer\.tokens: .*expected int/,
    ],
    [
      "an unsafe integer size",
      (m) => {
        m.vae.latentShape.channels = 2 ** 53;
      },
      /vae\.latentShape\.channels/,
    ],
    [
      "a negative resolution",
      (m) => {
        m.vae.inputResolution.width = -256;
      },
      /vae\.inputResolution\.width: Too small/,
    ],
    [
      "an absurd resolution",
      (m) => {
        m.vae.inputResolution.height = 1e6;
      },
      /vae\.inputResolution\.height: Too big/,
    ],
    [
      "a codebook over 2^31 values",
      (m) => {
        m.vae.latentShape = { channels: 4096, height: 16, width: 16 };
        m.quantizer = { tokens: 2 ** 18, groups: 2 ** 18, codeDim: 4, codesPerGroup: 2 ** 24 };
      },
      /quantizer: groups·codesPerGroup·codeDim = 262144·16777216·4 = 17592186044416 codebook values, over the limit of 2\^31/,
    ],
    [
      "an unknown VAE kind",
      (m) => {
        m.vae.kind = "sd-vae";
      },
      /vae\.kind: .*"dcae"\|"small-conv"/,
    ],
    [
      "an unknown rectifier architecture",
      (m) => {
        m.rectifier.architecture = "mlp";
      },
      /rectifier\.architecture: architecture must be "dcae-decoder-stage" or "identity"/,
    ],
    [
      "a residual flag other than true (absent is the paper's plain stage)",
      (m) => {
        m.rectifier.residual = false;
      },
      /rectifier\.residual: .*true/,
    ],
    [
      "an even attention kernel",
      (m) => {
        m.rectifier.qkvMultiscales = [4];
      },
      /rectifier\.qkvMultiscales\[0\]: kernel sizes must be odd/,
    ],
    [
      "another norm",
      (m) => {
        m.rectifier.norm = "batch_norm";
      },
      /rectifier\.norm/,
    ],
    [
      "a rectifier file for an identity rectifier",
      (m) => {
        m.rectifier = { architecture: "identity" };
      },
      /files\.rectifier: must be absent when rectifier\.architecture is "identity"/,
    ],
    [
      "no rectifier file for a real rectifier",
      (m) => {
        delete m.files.rectifier;
      },
      /files\.rectifier: is required for rectifier\.architecture "dcae-decoder-stage"/,
    ],
    [
      "an uppercase sha256",
      (m) => {
        m.files.codebook.sha256 = hex("B");
      },
      /files\.codebook\.sha256: must be 64 lowercase hex digits/,
    ],
    [
      "a short sha256",
      (m) => {
        m.files.stats.sha256 = "abc";
      },
      /files\.stats\.sha256/,
    ],
    [
      "a negative byte count",
      (m) => {
        m.files.stats.bytes = -1;
      },
      /files\.stats\.bytes: Too small/,
    ],
    [
      "one path with two different hashes",
      (m) => {
        m.files.codebook.path = m.files.stats.path;
      },
      /files\.codebook: names the same path as files\.stats \("stats\.safetensors"\) with a different size or sha256/,
    ],
    [
      "a creation time that is not ISO 8601",
      (m) => {
        m.training.createdAt = "26/11/2026";
      },
      /training\.createdAt/,
    ],
    [
      "a negative learning rate",
      (m) => {
        m.training.learningRates.quantizer = -0.01;
      },
      /training\.learningRates\.quantizer: Too small/,
    ],
    [
      "a metric that is not a number",
      (m) => {
        m.training.metrics.rFID = "1.06";
      },
      /training\.metrics\.rFID/,
    ],
    [
      "an unknown key",
      (m) => {
        m.quantizer.commitmentWeight = 0.25;
      },
      /quantizer: Unrecognized key: "commitmentWeight"/,
    ],
    [
      "another schema version",
      (m) => {
        m.schema = "revq.tokenizer/v2";
      },
      /schema: .*"revq\.tokenizer\/v1"/,
    ],
    [
      "a missing name",
      (m) => {
        delete m.name;
      },
      /^manifest: name: /,
    ],
    [
      "__proto__ inside the free-form VAE config",
      (m) => {
        m.vae.config = JSON.parse('{"a":[{"__proto__":{"x":1}}]}');
      },
      /vae\.config\.a\[0\]\.__proto__: "__proto__" is not allowed as a key/,
    ],
    [
      "__proto__ among the metrics",
      (m) => {
        m.training.metrics = JSON.parse('{"__proto__":1}');
      },
      /training\.metrics\.__proto__/,
    ],
  ])("rejects %s, naming the field", (_, edit, message) => {
    expect(manifestError(edited(edit)).message).toMatch(message);
  });

  it("lists every problem at once", () => {
    const error = manifestError(
      edited((m) => {
        m.name = "";
        m.files.stats.sha256 = "x";
        m.vae.latentShape.height = 0;
      }),
    );
    expect(error.message).toMatch(/name: .*; vae\.latentShape\.height: .*; files\.stats\.sha256: /);
  });

  it("rejects a document that is not an object", () => {
    expect(manifestError(null).message).toMatch(/^manifest: manifest: .*expected object/);
    expect(manifestError([]).message).toMatch(/expected object/);
  });

  it.each([
    "../codebook.safetensors",
    "weights/../../etc/passwd",
    "..",
    "/etc/passwd",
    "weights\\codebook.safetensors",
    "C:/codebook.safetensors",
    "https://example.com/codebook.safetensors",
    "weights//codebook.safetensors",
    "./codebook.safetensors",
    "weights/./codebook.safetensors",
    "weights/",
    "",
    "codebook\u0000.safetensors",
    "code\nbook.safetensors",
  ])("rejects the file path %j", (path) => {
    const error = manifestError(
      edited((m) => {
        m.files.codebook.path = path;
      }),
    );
    expect(error.message).toMatch(/^manifest: files\.codebook\.path: /);
  });

  it.each(["codebook.safetensors", "tokenizers/t1/codebook..v2.safetensors", ".hidden", "a b/ü"])(
    "accepts the file path %j",
    (path) => {
      const manifest = edited((m) => {
        m.files.codebook.path = path;
      });
      expect(parseManifest(manifest)).toEqual(manifest);
    },
  );
});

describe("manifestHash", () => {
  it("is the SHA-256 of the canonical JSON, pinned", async () => {
    // Computed independently with Python:
    //   hashlib.sha256(json.dumps(m, sort_keys=True, separators=(",", ":"),
    //                  ensure_ascii=False).encode()).hexdigest()
    // A change here changes every tokenizer's identity: it needs a new schema version.
    expect(await manifestHash(paperManifest())).toBe(PAPER_MANIFEST_HASH);
  });

  it("does not depend on key order", async () => {
    const reordered = reverseKeys(paperManifest()) as TokenizerManifest;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(paperManifest()));
    expect(await manifestHash(reordered)).toBe(await manifestHash(paperManifest()));
    expect(await manifestHash(parseManifest(reordered))).toBe(await manifestHash(paperManifest()));
  });

  it("changes when any value changes", async () => {
    const base = await manifestHash(paperManifest());
    const paths = leafPaths(paperManifest());
    expect(paths.length).toBeGreaterThan(40);
    for (const path of paths) {
      const changed = edited((m) => {
        const parent = path.slice(0, -1).reduce((o, k) => o[k], m);
        const key = path[path.length - 1];
        const old = parent[key];
        parent[key] =
          typeof old === "number" ? old + 1 : typeof old === "string" ? `${old}x` : !old;
      });
      expect(await manifestHash(changed as TokenizerManifest), path.join(".")).not.toBe(base);
    }
  });

  it("changes when an optional field is added or removed", async () => {
    const base = await manifestHash(paperManifest());
    const withoutDescription = edited((m) => {
      delete m.description;
    });
    expect(await manifestHash(withoutDescription as TokenizerManifest)).not.toBe(base);
  });

  it("keeps its identity without an evaluation, and takes one as part of it", async () => {
    // The pin above is of a manifest without `evaluation`: adding the optional field changed it not.
    const evaluation = {
      heldOut: { latents: 256, images: 8 },
      latentMse: { quantized: 0.35, rectified: 0.29 },
      images: {
        tokens: { psnr: 24.1, ssim: 0.71 },
        vae: { psnr: 25.3, ssim: 0.77 },
        tokensVsVae: { ssim: 1 },
      },
      usage: { min: 0.62, mean: 0.84 },
      bitsPerImage: 512 * 14,
    };
    const evaluated = parseManifest({ ...paperManifest(), evaluation });
    expect(evaluated.evaluation).toEqual(evaluation);
    expect(await manifestHash(evaluated)).not.toBe(PAPER_MANIFEST_HASH);
    expect(() =>
      parseManifest({ ...paperManifest(), evaluation: { ...evaluation, fid: 3 } }),
    ).toThrow(/evaluation: Unrecognized key/);
    expect(() =>
      parseManifest({
        ...paperManifest(),
        evaluation: { ...evaluation, usage: { min: 2, mean: 1 } },
      }),
    ).toThrow(/evaluation\.usage\.min/);
  });
});

const PAPER_MANIFEST_HASH = "296ba68b44a033454eaabe909678be19d2b39dfbacd6ce3c9efd648351250025";
