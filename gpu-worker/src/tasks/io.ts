/** Bucket reads and writes on behalf of a task, with the bucket's failures told as task errors. */
import { decodeImage } from "../images/codec.ts";
import type { ImageSize } from "../models/vae.ts";
import { type Bucket, BucketError } from "../storage.ts";
import { TaskError } from "../task-error.ts";

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

/**
 * The image at `key`, decoded and fitted to `size` (images/codec.ts). sharp finds the format from
 * the bytes; `expected` only words the error ("PNG", "an image"). An image that does not decode
 * never will: that failure is not retryable. `check` may refuse the bytes before they are decoded.
 */
export async function readImage(
  bucket: Bucket,
  key: string,
  size: ImageSize,
  what: string,
  expected: string,
  signal: AbortSignal,
  check?: (bytes: Uint8Array) => void,
): Promise<Float32Array> {
  const bytes = await readObject(bucket, key, what, signal);
  check?.(bytes);
  try {
    return await decodeImage(bytes, size);
  } catch (error) {
    throw new TaskError(
      "image-undecodable",
      `${what} could not be decoded as ${expected}: ${(error as Error).message}`,
      false,
    );
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
