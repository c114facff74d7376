/**
 * How a task ends badly. A TaskError is a failure the worker understood: its code and message go
 * to the job as they are, and `retryable` says whether another attempt could succeed (a bucket
 * that was unreachable) or never will (an image that does not decode). Any other exception is a
 * failure the worker did not foresee and is reported as retryable `internal`.
 *
 * It sits below every layer that throws it (the tokenizer cache, pipeline/, tasks/) so that none
 * of them imports a layer above it.
 */
import type { TokenizerEvaluation } from "@revq/shared";

export type TaskErrorOptions = ErrorOptions & {
  /** A trained tokenizer's figures, when they are why the task failed: they go to the job. */
  evaluation?: TokenizerEvaluation;
};

export class TaskError extends Error {
  override name = "TaskError";
  readonly code: string;
  readonly retryable: boolean;
  readonly evaluation?: TokenizerEvaluation;

  constructor(code: string, message: string, retryable: boolean, options?: TaskErrorOptions) {
    super(message, options);
    this.code = code;
    this.retryable = retryable;
    if (options?.evaluation) this.evaluation = options.evaluation;
  }
}
