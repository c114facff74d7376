/**
 * The bucket through wrangler dev's S3 door with the operator's key (wrangler.toml's
 * local_dev.experimental_s3_credentials): how an operator or a test reads and writes any object.
 * GPU workers never hold this key; they get presigned URLs per task (gpu-worker/src/storage.ts).
 */
import { AwsClient } from "aws4fetch";
import type { Bucket } from "../../../gpu-worker/src/storage.ts";

export type S3Door = {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
};

export function s3DoorBucket(door: S3Door): Bucket {
  const client = new AwsClient({ ...door, service: "s3", region: "auto" });
  const url = (key: string) =>
    `${door.endpoint}/${door.bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const checked = async (response: Response, what: string) => {
    if (!response.ok) throw new Error(`${what}: ${response.status} ${await response.text()}`);
    return response;
  };
  return {
    get: async (key) =>
      new Uint8Array(
        await (await checked(await client.fetch(url(key)), `get ${key}`)).arrayBuffer(),
      ),
    put: async (key, bytes, contentType) => {
      await checked(
        await client.fetch(url(key), {
          method: "PUT",
          body: bytes,
          headers: { "content-type": contentType },
        }),
        `put ${key}`,
      );
    },
  };
}
