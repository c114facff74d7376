/**
 * Which bucket objects a task may read and write, from the payload the edge itself stored: a
 * worker is granted URLs for these and nothing else (grants.ts). Exact keys where
 * the payload names them; prefixes where the worker names the objects (latent shards,
 * checkpoints) or where only the dataset listing names them (a dataset's images, which are the
 * tenant's own uploads and files).
 */
import {
  bucketKeys,
  type DatasetRef,
  MAX_OBJECTS_PER_GRANT,
  type TaskPayload,
  type TokenizerRef,
} from "@revq/shared";

export type Method = "GET" | "PUT";

/** `key` exactly, or every key under `prefix` (which ends in /). */
export type Access = { methods: Method[] } & ({ key: string } | { prefix: string });

const read = (key: string): Access => ({ methods: ["GET"], key });
const readUnder = (prefix: string): Access => ({ methods: ["GET"], prefix });
const write = (key: string): Access => ({ methods: ["PUT"], key });
const readWriteUnder = (prefix: string): Access => ({ methods: ["GET", "PUT"], prefix });

const tokenizer = (ref: TokenizerRef): Access[] => [
  read(ref.manifestKey),
  readUnder(ref.filesPrefix),
];

/** A dataset listing and the images it may list: uploads or files of a prefix dataset, all the tenant's own. */
function listing(tenantId: string, key: string): Access[] {
  return [
    read(key),
    readUnder(bucketKeys.images(tenantId)),
    readUnder(bucketKeys.allTenantFiles(tenantId)),
  ];
}

function dataset(tenantId: string, ref: DatasetRef): Access[] {
  return [...listing(tenantId, ref.listing), readWriteUnder(ref.latents)];
}

/**
 * The objects a task may touch. A train task also writes its new tokenizer's files under
 * tokenizers/ (`writesTokenizerFiles`), for a manifest hash not yet known when it was leased; the
 * grant checks those against the registered tokenizers.
 */
export function taskAccess(
  tenantId: string,
  payload: TaskPayload,
): { access: Access[]; writesTokenizerFiles: boolean } {
  switch (payload.kind) {
    case "encode":
      return {
        access: [
          ...tokenizer(payload.tokenizer),
          ...payload.images.map((image) => read(image.bucketKey)),
          ...(payload.shard ? listing(tenantId, payload.shard.listing) : []),
          write(payload.output.tokens),
        ],
        writesTokenizerFiles: false,
      };
    case "reconstruct":
      return {
        access: [
          ...tokenizer(payload.tokenizer),
          read(payload.input.tokens),
          ...payload.output.images.map(write),
          ...(payload.output.latents ? [write(payload.output.latents)] : []),
        ],
        writesTokenizerFiles: false,
      };
    case "extract":
      return {
        access: [...tokenizer(payload.vae), ...dataset(tenantId, payload.dataset)],
        writesTokenizerFiles: false,
      };
    case "train":
      return {
        access: [
          ...tokenizer(payload.base),
          ...dataset(tenantId, payload.dataset),
          readWriteUnder(payload.output.checkpoints),
        ],
        writesTokenizerFiles: true,
      };
  }
}

/**
 * What a task reads first, by exact key (a subset of taskAccess): granted with its lease
 * (queue/lease.ts), so that the worker's first transfer needs no call for its URL.
 */
export function taskInputs(payload: TaskPayload): string[] {
  switch (payload.kind) {
    case "encode":
      if (payload.shard) return [payload.shard.listing];
      return payload.images.slice(0, MAX_OBJECTS_PER_GRANT).map((image) => image.bucketKey);
    case "reconstruct":
      return [payload.input.tokens];
    case "extract":
    case "train":
      return [payload.dataset.listing];
  }
}

/** Whether `access` allows `method` on `key` (a plain key: bucket-keys.ts, isPlainKey). */
export function allows(access: Access[], method: Method, key: string): boolean {
  return access.some(
    (a) => a.methods.includes(method) && ("key" in a ? a.key === key : key.startsWith(a.prefix)),
  );
}
