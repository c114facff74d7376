/**
 * What the task runners share: the loaded tokenizers and the device's queue. (The bucket is each
 * task's own: TaskContext.bucket.)
 */
import type { Batcher } from "../pipeline/batcher.ts";
import type { TokenizerStore } from "../pipeline/tokenizer.ts";

export type Pipelines = {
  tokenizers: TokenizerStore;
  batcher: Batcher;
  /** Images per device batch; also how many images a task prepares ahead. */
  batchSize: number;
};
