/**
 * The tokenizer manifest: everything needed to use one ReVQ tokenizer (which VAE, the quantizer's
 * sizes, the rectifier's architecture, the files holding statistics, codebook and rectifier
 * weights, and how it was trained). Its canonical JSON's SHA-256 is the tokenizer's identity, which
 * every token stream records, so tokens are never decoded with the wrong codebook.
 *
 * Objects are strict: an unknown key is an error, not silently dropped, because dropping it would
 * make the hash disagree with the document it came from. New fields mean a new schema version,
 * except optional ones, as `evaluation` was added: a manifest without one is the same document
 * and keeps its hash (the canonical JSON has no key for an absent field); only a manifest that
 * has one is refused by readers older than the field.
 */
import * as z from "zod";
import { FormatError } from "../errors.ts";
import { canonicalJson } from "./canonical-json.ts";
import { sha256Hex } from "./sha256.ts";
import { TokenizerEvaluation } from "./tokenizer-evaluation.ts";

export const MANIFEST_SCHEMA_VERSION = "revq.tokenizer/v1";

/** Known VAEs. A string enum so that adding one later leaves existing manifests valid. */
export const VAE_KINDS = ["dcae", "small-conv"] as const;

/** Upper bounds far above any real tokenizer, low enough to keep products exact and sizes sane. */
const MAX = {
  imageSide: 16_384,
  latentChannels: 4_096,
  latentSide: 4_096,
  tokens: 1 << 20,
  codeDim: 4_096,
  codesPerGroup: 1 << 24,
  /** G·K·D float32 values: 8 GiB, already far beyond the paper's largest codebook (0.5 Gi). */
  codebookValues: 2 ** 31,
  rectifierChannels: 8_192,
  rectifierBlocks: 64,
  kernelSize: 31,
  text: 200,
  longText: 10_000,
};

const size = (max: number) => z.int().min(1).max(max);
const label = z.string().min(1).max(MAX.text);

/** Why a manifest-relative path is unsafe to join onto a directory or bucket prefix, if it is. */
function pathProblem(path: string): string | undefined {
  if (path.startsWith("/")) return "must be relative (no leading /)";
  if (path.includes("\\")) return "must use / as separator (no backslash)";
  if (path.includes(":")) return "must not contain ':' (drive letters and URL schemes)";
  if (/\p{Cc}/u.test(path)) return "must not contain control characters";
  const segments = path.split("/");
  if (segments.includes("..")) return "must not contain '..' segments";
  if (segments.some((s) => s === "" || s === ".")) return "must not contain empty or '.' segments";
  return undefined;
}

const RelativePath = z
  .string()
  .min(1)
  .max(1024)
  .superRefine((path, ctx) => {
    const problem = pathProblem(path);
    if (problem) ctx.addIssue({ code: "custom", message: `${JSON.stringify(path)} ${problem}` });
  });

/** A file next to the manifest, pinned by size and hash. */
export const FileRef = z.strictObject({
  path: RelativePath,
  bytes: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
  /** Tensor names the file must hold (safetensors files). */
  tensors: z.array(label).optional(),
});
export type FileRef = z.infer<typeof FileRef>;

const Vae = z.strictObject({
  name: label,
  kind: z.enum(VAE_KINDS),
  inputResolution: z.strictObject({ height: size(MAX.imageSide), width: size(MAX.imageSide) }),
  latentShape: z.strictObject({
    channels: size(MAX.latentChannels),
    height: size(MAX.latentSide),
    width: size(MAX.latentSide),
  }),
  /** The VAE's own configuration (a diffusers config.json, say), kept as given. */
  config: z.record(z.string(), z.json()).optional(),
  /** Absent for a VAE loaded from elsewhere (published DC-AE weights). */
  weights: FileRef.optional(),
});

const Quantizer = z.strictObject({
  /** T: tokens per image. */
  tokens: size(MAX.tokens),
  /** G: codebooks; token t uses codebook t mod G. */
  groups: size(MAX.tokens),
  /** D: values per token. */
  codeDim: size(MAX.codeDim),
  /** K: codes in each codebook. */
  codesPerGroup: z
    .int()
    .min(2, "a codebook needs at least 2 codes")
    .max(MAX.codesPerGroup, `at most 2^24 = ${MAX.codesPerGroup} codes per group`),
});

const Rectifier = z.discriminatedUnion(
  "architecture",
  [
    // One DC-AE decoder stage at latent resolution (EfficientViT blocks), as in the paper.
    z.strictObject({
      architecture: z.literal("dcae-decoder-stage"),
      channels: size(MAX.rectifierChannels),
      blocks: size(MAX.rectifierBlocks),
      attentionHeadDim: size(MAX.rectifierChannels),
      qkvMultiscales: z
        .array(size(MAX.kernelSize).refine((k) => k % 2 === 1, "kernel sizes must be odd"))
        .max(8),
      norm: z.literal("rms_norm"),
      act: z.literal("silu"),
      /** true: the stage's output is added to its input (revq's residual rectifier, not the paper's). */
      residual: z.literal(true).optional(),
    }),
    // No rectifier: decoding uses the quantized latent as it is.
    z.strictObject({ architecture: z.literal("identity") }),
  ],
  { error: 'architecture must be "dcae-decoder-stage" or "identity"' },
);

const Training = z.strictObject({
  dataset: z.strictObject({
    name: label,
    images: z.int().min(1),
    description: z.string().max(MAX.longText).optional(),
  }),
  epochs: size(1_000_000),
  batchSize: size(1_000_000),
  seed: z.int().min(0),
  learningRates: z.strictObject({
    /** 0: the run kept a trained codebook as it was and trained the rectifier alone. */
    quantizer: z.number().min(0),
    rectifier: z.number().positive().optional(),
  }),
  createdAt: z.iso.datetime({ offset: true }),
  software: z.strictObject({ name: label, version: label }),
  /** Final metrics (losses, usage, rFID...), by name. */
  metrics: z.record(label, z.number()).optional(),
});

const ManifestFields = z.strictObject({
  schema: z.literal(MANIFEST_SCHEMA_VERSION),
  name: label,
  description: z.string().max(MAX.longText).optional(),
  vae: Vae,
  quantizer: Quantizer,
  rectifier: Rectifier,
  files: z.strictObject({
    /** Mean and std of every latent dimension. */
    stats: FileRef,
    /** The (G, K, D) F32 codebook. */
    codebook: FileRef,
    /** Rectifier weights; absent exactly when the rectifier is the identity. */
    rectifier: FileRef.optional(),
  }),
  /** Provenance; absent for a tokenizer imported from elsewhere. */
  training: Training.optional(),
  /** The trained tokenizer's figures on its run's held-out set; absent where none was measured. */
  evaluation: TokenizerEvaluation.optional(),
});

function checkInvariants(m: z.infer<typeof ManifestFields>, ctx: z.RefinementCtx): void {
  const report = (path: string[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  const { tokens: T, groups: G, codeDim: D, codesPerGroup: K } = m.quantizer;
  const { channels: C, height: H, width: W } = m.vae.latentShape;

  if (C * H * W !== T * D) {
    report(
      ["quantizer"],
      `tokens·codeDim = ${T}·${D} = ${T * D} must equal the latent size vae.latentShape channels·height·width = ${C}·${H}·${W} = ${C * H * W}`,
    );
  }
  if (G > T) {
    report(["quantizer", "groups"], `groups (${G}) cannot exceed tokens (${T})`);
  } else if (T % G !== 0) {
    report(["quantizer", "groups"], `tokens (${T}) must be a multiple of groups (${G})`);
  }
  if (G * K * D > MAX.codebookValues) {
    report(
      ["quantizer"],
      `groups·codesPerGroup·codeDim = ${G}·${K}·${D} = ${G * K * D} codebook values, over the limit of 2^31`,
    );
  }

  const identity = m.rectifier.architecture === "identity";
  if (identity && m.files.rectifier) {
    report(["files", "rectifier"], 'must be absent when rectifier.architecture is "identity"');
  } else if (!identity && !m.files.rectifier) {
    report(
      ["files", "rectifier"],
      `is required for rectifier.architecture "${m.rectifier.architecture}"`,
    );
  }

  checkSharedPaths(m, report);
}

/** Two references may name the same file (stats and codebook in one), but must then agree on it. */
function checkSharedPaths(
  m: z.infer<typeof ManifestFields>,
  report: (path: string[], message: string) => void,
): void {
  const refs: [string[], FileRef | undefined][] = [
    [["vae", "weights"], m.vae.weights],
    [["files", "stats"], m.files.stats],
    [["files", "codebook"], m.files.codebook],
    [["files", "rectifier"], m.files.rectifier],
  ];
  const seen = new Map<string, [string[], FileRef]>();
  for (const [where, ref] of refs) {
    if (!ref) continue;
    const first = seen.get(ref.path);
    if (!first) {
      seen.set(ref.path, [where, ref]);
    } else if (first[1].sha256 !== ref.sha256 || first[1].bytes !== ref.bytes) {
      report(
        where,
        `names the same path as ${first[0].join(".")} (${JSON.stringify(ref.path)}) with a different size or sha256`,
      );
    }
  }
}

export const TokenizerManifest = ManifestFields.superRefine(checkInvariants);
export type TokenizerManifest = z.infer<typeof TokenizerManifest>;

/**
 * Validates a manifest (parsed JSON). Throws FormatError("manifest", "invalid") listing every
 * problem as `path: message`.
 */
export function parseManifest(json: unknown): TokenizerManifest {
  const protoPath = findProtoKey(json);
  if (protoPath) {
    throw new FormatError(
      "manifest",
      "invalid",
      `${pathText(protoPath)}: "__proto__" is not allowed as a key`,
    );
  }
  const result = TokenizerManifest.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${pathText(i.path)}: ${i.message}`);
    throw new FormatError("manifest", "invalid", problems.join("; "));
  }
  return result.data;
}

/** The tokenizer's identity: lowercase hex SHA-256 of the manifest's canonical JSON in UTF-8. */
export function manifestHash(manifest: TokenizerManifest): Promise<string> {
  return sha256Hex(canonicalJson(manifest));
}

/** `vae.latentShape.channels`, `rectifier.qkvMultiscales[0]`; the root is "manifest". */
function pathText(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "manifest";
  return path
    .map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`))
    .join("");
}

/**
 * zod drops "__proto__" keys from records (vae.config, training.metrics) without a word, so the
 * parsed manifest, and its hash, would silently differ from the document; refuse them instead.
 * Iterative, so a deeply nested document cannot overflow the stack.
 */
function findProtoKey(root: unknown): PropertyKey[] | undefined {
  const pending: [unknown, PropertyKey[]][] = [[root, []]];
  const seen = new Set<object>();
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, path] = next;
    if (typeof value !== "object" || value === null || seen.has(value)) continue;
    seen.add(value);
    for (const [key, item] of Object.entries(value)) {
      const itemPath = [...path, Array.isArray(value) ? Number(key) : key];
      if (key === "__proto__") return itemPath;
      pending.push([item, itemPath]);
    }
  }
  return undefined;
}

/** Every distinct file of a manifest, each once (two references may name the same file). */
export function manifestFiles(manifest: TokenizerManifest): FileRef[] {
  const refs = [
    manifest.vae.weights,
    manifest.files.stats,
    manifest.files.codebook,
    manifest.files.rectifier,
  ];
  const byPath = new Map<string, FileRef>();
  for (const ref of refs) if (ref && !byPath.has(ref.path)) byPath.set(ref.path, ref);
  return [...byPath.values()];
}
