/**
 * How a task ends badly. A TaskError is a failure the worker understood: its code and message go
 * to the job as they are, and `retryable` says whether another attempt could succeed (a bucket
 * that was unreachable) or never will (an image that does not decode). Any other exception is a
 * failure the worker did not foresee and is reported as retryable `internal`.
 *
 * It sits below every layer that throws it (the tokenizer cache, pipeline/, tasks/) so that none
 * of them imports a layer above it.
 */
export class TaskError extends Error {
  override name = "TaskError";
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.retryable = retryable;
  }
}
