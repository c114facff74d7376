/**
 * Where every object lives in the one bucket. The edge writes uploads and tokenizers here and
 * names these keys in task payloads; the GPU worker reads and writes them through the S3 door.
 * Nothing else may build a key by hand, so the layout can only change here.
 *
 *   tenants/{tenantId}/images/{imageId}                      uploaded image, as sent
 *   tenants/{tenantId}/jobs/{jobId}/tokens.rvqt              token stream of an encode job
 *   tenants/{tenantId}/jobs/{jobId}/images/{index}.png       images of a reconstruct job
 *   tenants/{tenantId}/jobs/{jobId}/latents.npy              and, if asked, its VAE latents
 *   tenants/{tenantId}/jobs/{jobId}/checkpoints/{name}       a train job's resumable state
 *   tenants/{tenantId}/tokens/{tokensId}.rvqt                uploaded tokens (a model's output)
 *   tenants/{tenantId}/files/{path}                          the tenant's own files (dataset prefixes)
 *   tenants/{tenantId}/datasets/{listingHash}.json           a frozen dataset listing (dataset.ts)
 *   tenants/{tenantId}/latents/{listingHash}/{vaeHash}/s{shardSize}/shard-{i}.safetensors
 *                                                            its latents under one VAE, by shard
 *   tenants/{tenantId}/token-shards/{listingHash}/{manifestHash}/s{shardSize}/shard-{i}.rvqt
 *                                                            its tokens under one tokenizer, by shard
 *   tokenizers/{manifestHash}/manifest.json                  a tokenizer's manifest
 *   tokenizers/{manifestHash}/files/{path}                   its files, by manifest path
 */

const ID = /^[a-z]{3}_[0-9a-z]{26}$/;
const HASH = /^[0-9a-f]{64}$/;

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value))
    throw new Error(`bucket key: ${JSON.stringify(value)} is not a ${what}`);
  return value;
}

const tenant = (tenantId: string) => `tenants/${checked(tenantId, ID, "tenant id")}`;
const job = (tenantId: string, jobId: string) =>
  `${tenant(tenantId)}/jobs/${checked(jobId, ID, "job id")}`;
const tokenizer = (hash: string) => `tokenizers/${checked(hash, HASH, "manifest hash")}`;
/** The prefix of a listing's shards of one kind under one model (`what`: a VAE or tokenizer hash). */
const shards =
  (kind: "latents" | "token-shards", what: string) =>
  (tenantId: string, listingHash: string, hash: string, shardSize: number) => {
    if (!Number.isSafeInteger(shardSize) || shardSize < 1)
      throw new Error(`bucket key: bad shard size ${shardSize}`);
    return `${tenant(tenantId)}/${kind}/${checked(listingHash, HASH, "listing hash")}/${checked(hash, HASH, what)}/s${shardSize}/`;
  };

/** A relative path of plain segments: no empty, "." or ".." segment, no leading "/". */
const FILE_PATH =
  /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9._\-=+@, ()]+(?:\/[A-Za-z0-9._\-=+@, ()]+)*\/?$/;

export const bucketKeys = {
  image: (tenantId: string, imageId: string) =>
    `${tenant(tenantId)}/images/${checked(imageId, ID, "image id")}`,
  /** The prefix of all of a tenant's uploaded images. */
  images: (tenantId: string) => `${tenant(tenantId)}/images/`,
  jobTokens: (tenantId: string, jobId: string) => `${job(tenantId, jobId)}/tokens.rvqt`,
  jobImage: (tenantId: string, jobId: string, index: number) => {
    if (!Number.isSafeInteger(index) || index < 0)
      throw new Error(`bucket key: bad index ${index}`);
    return `${job(tenantId, jobId)}/images/${index}.png`;
  },
  /** A reconstruct job's rectified, de-normalised VAE latents, all records in one .npy. */
  jobLatents: (tenantId: string, jobId: string) => `${job(tenantId, jobId)}/latents.npy`,
  uploadedTokens: (tenantId: string, tokensId: string) =>
    `${tenant(tenantId)}/tokens/${checked(tokensId, ID, "tokens id")}.rvqt`,
  /** The prefix under which a train job keeps its checkpoints (the worker names the files). */
  jobCheckpoints: (tenantId: string, jobId: string) => `${job(tenantId, jobId)}/checkpoints/`,
  /** `path` names a file or, ending in /, a folder of the tenant's own files. */
  tenantFiles: (tenantId: string, path: string) => {
    if (path.length > 512) throw new Error("bucket key: a file path is at most 512 characters");
    return `${tenant(tenantId)}/files/${checked(path, FILE_PATH, "relative file path")}`;
  },
  /** The prefix of all of a tenant's own files. */
  allTenantFiles: (tenantId: string) => `${tenant(tenantId)}/files/`,
  datasetListing: (tenantId: string, listingHash: string) =>
    `${tenant(tenantId)}/datasets/${checked(listingHash, HASH, "listing hash")}.json`,
  /** The prefix of a listing's latent shards under one VAE, cut into shards of `shardSize`. */
  latents: shards("latents", "VAE hash"),
  /**
   * The prefix of a listing's token shards under one tokenizer (its manifest hash), cut into
   * shards of `shardSize`: the same listing, tokenizer and size find the same shards again.
   */
  tokenShards: shards("token-shards", "manifest hash"),
  tokenizerManifest: (hash: string) => `${tokenizer(hash)}/manifest.json`,
  /** `path` is a manifest FileRef path, already checked safe by the manifest schema. */
  tokenizerFile: (hash: string, path: string) => `${tokenizer(hash)}/files/${path}`,
} as const;

/**
 * Whether `key` names an object plainly: segments of safe characters, none empty, "." or "..".
 * A URL built from such a key addresses that key and no other (a URL parser resolves "..").
 */
export function isPlainKey(key: string): boolean {
  return key.length <= 1024 && !key.endsWith("/") && FILE_PATH.test(key);
}

/** The manifest hash of a key tokenizers/{hash}/files/{path}; undefined for any other key. */
export function tokenizerFileHash(key: string): string | undefined {
  const match = /^tokenizers\/([0-9a-f]{64})\/files\/./.exec(key);
  return match?.[1];
}

function shardName(index: number, extension: string): string {
  if (!Number.isSafeInteger(index) || index < 0 || index > 999_999)
    throw new Error(`bucket key: bad shard index ${index}`);
  return `shard-${String(index).padStart(6, "0")}.${extension}`;
}

/** A latent shard's name under its prefix: shard-000000.safetensors, shard-000001... */
export function latentShardName(index: number): string {
  return shardName(index, "safetensors");
}

/** A token shard's name under its prefix: shard-000000.rvqt, shard-000001... */
export function tokenShardName(index: number): string {
  return shardName(index, "rvqt");
}
