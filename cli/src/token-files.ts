/**
 * Token files as revq writes them (and as a user's model may): a token stream (.rvqt), the JSON
 * token document, or a .npy of integer ids (N, T). Each is checked with the shared format code
 * before it is sent, so a damaged or foreign file is refused here with the reason.
 */
import {
  NPY_MEDIA_TYPE,
  readNpy,
  readTokenJson,
  readTokenStream,
  TOKEN_STREAM_MEDIA_TYPE,
} from "@revq/shared";
import { usageError } from "./errors.ts";
import { readLocalFile } from "./files.ts";

export type TokenFile = {
  /** `npy` names no tokenizer: whoever sends it must name one. */
  form: "stream" | "json" | "npy";
  body: Uint8Array;
  contentType: string;
};

const isNpy = (bytes: Uint8Array) =>
  bytes[0] === 0x93 && new TextDecoder().decode(bytes.subarray(1, 6)) === "NUMPY";

export async function readTokenFile(path: string): Promise<TokenFile> {
  const body = await readLocalFile(path);
  try {
    if (isNpy(body)) {
      const { shape, dtype } = readNpy(body);
      if (shape.length !== 2 || dtype === "<f4" || dtype === "<f8") {
        throw new Error(
          `token ids are integers of shape (N, T), not ${dtype} (${shape.join(", ")})`,
        );
      }
      return { form: "npy", body, contentType: NPY_MEDIA_TYPE };
    }
    if (new TextDecoder().decode(body.subarray(0, 16)).trimStart().startsWith("{")) {
      readTokenJson(JSON.parse(new TextDecoder().decode(body)));
      return { form: "json", body, contentType: "application/json" };
    }
    readTokenStream(body);
    return { form: "stream", body, contentType: TOKEN_STREAM_MEDIA_TYPE };
  } catch (error) {
    throw usageError(
      `${path} is not a token file: ${(error as Error).message}`,
      "give a token stream (.rvqt), the JSON form or a .npy of ids, as revq tokenize writes them",
    );
  }
}
