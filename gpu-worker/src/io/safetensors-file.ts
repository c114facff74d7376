/**
 * A TensorSource over a safetensors file on disk that reads one tensor at a time, so that loading
 * DC-AE's 1.25 GB checkpoint holds at most the largest tensor in memory besides the model.
 */

import { open } from "node:fs/promises";
import {
  decodeTensorBytes,
  headerLengthFromPrefix,
  parseSafetensorsHeader,
  SAFETENSORS_PREFIX_BYTES,
} from "@revq/shared";
import { checkShape, toFloat32 } from "../models/sources.ts";
import type { TensorSource } from "../models/weights.ts";

export type FileTensorSource = TensorSource & { close(): Promise<void> };

export async function openSafetensorsFile(path: string, prefix = ""): Promise<FileTensorSource> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const prefixBytes = await readAt(file, 0, SAFETENSORS_PREFIX_BYTES);
    const headerBytes = await readAt(
      file,
      SAFETENSORS_PREFIX_BYTES,
      headerLengthFromPrefix(prefixBytes),
    );
    const header = parseSafetensorsHeader(headerBytes, { fileSize: size });
    const names = [...header.tensors.keys()].filter((n) => n.startsWith(prefix));
    return {
      async read(name, shape) {
        const info = header.tensors.get(prefix + name);
        if (!info) throw new Error(`${path} has no tensor ${prefix + name}`);
        checkShape(info, shape);
        const bytes = await readAt(file, info.start, info.end - info.start);
        return toFloat32(decodeTensorBytes(info, bytes), info.name);
      },
      names: () => names.map((n) => n.slice(prefix.length)),
      close: () => file.close(),
    };
  } catch (error) {
    await file.close();
    throw error;
  }
}

async function readAt(
  file: Awaited<ReturnType<typeof open>>,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(bytes, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
  return bytes;
}
