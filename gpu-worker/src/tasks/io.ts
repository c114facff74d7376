/** Bucket reads and writes on behalf of a task, with the bucket's failures told as task errors. */
import { type Bucket, BucketError } from "../storage.ts";
import { TaskError } from "./errors.ts";

/** `what` names the object for people: "image 3 (img_...)", "the token stream". */
export async function readObject(
  bucket: Bucket,
  key: string,
  what: string,
  signal: AbortSignal,
): Promise<Uint8Array> {
  try {
    return await bucket.get(key, { signal });
  } catch (error) {
    throw asTaskError(error, what, key);
  }
}

export async function writeObject(
  bucket: Bucket,
  key: string,
  bytes: Uint8Array,
  contentType: string,
  what: string,
  signal: AbortSignal,
): Promise<void> {
  try {
    await bucket.put(key, bytes, contentType, { signal });
  } catch (error) {
    throw asTaskError(error, what, key);
  }
}

function asTaskError(error: unknown, what: string, key: string): unknown {
  if (!(error instanceof BucketError)) return error;
  switch (error.code) {
    case "not-found":
      return new TaskError("input-missing", `${what} is not in the bucket (${key}).`, false);
    case "unreachable":
      return new TaskError(
        "bucket-unreachable",
        `The bucket stayed unreachable while reading or writing ${what}: ${error.message}`,
        true,
        { cause: error },
      );
    default:
      // Denied or refused: a configuration problem of this worker, which another may not have.
      return new TaskError("bucket-error", `${what}: ${error.message}`, true, { cause: error });
  }
}
