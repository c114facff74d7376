/**
 * Where training keeps what outlives a process (latent shards, checkpoints): named objects, each
 * written whole. The CLI uses a folder, the worker its job's bucket prefix.
 */
export interface BlobStore {
  /** The object's bytes, or null when there is none. */
  read(name: string): Promise<Uint8Array | null>;
  /** Replaces the object whole: a reader sees the old bytes or the new, never a mix. */
  write(name: string, bytes: Uint8Array): Promise<void>;
}
