/** What the task runners share: the bucket, the loaded tokenizers and the device's queue. */
import type { Batcher } from "../pipeline/batcher.ts";
import type { TokenizerStore } from "../pipeline/tokenizer.ts";
import type { Bucket } from "../storage.ts";

export type Pipelines = {
  bucket: Bucket;
  tokenizers: TokenizerStore;
  batcher: Batcher;
  /** Images per device batch; also how many images a task prepares ahead. */
  batchSize: number;
};
