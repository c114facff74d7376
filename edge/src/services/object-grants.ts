/**
 * Presigned bucket URLs for the current holder of a task, for the objects its payload names
 * (object-access.ts) and nothing else: a worker holds no bucket credential, so a tenant's GPU box
 * can reach only what its own tasks need, and never another tenant's objects.
 */
import {
  isPlainKey,
  type ObjectRequest,
  type ObjectsRequest,
  type ObjectsResponse,
  TaskPayload,
  tokenizerFileHash,
} from "@revq/shared";
import { inArray } from "drizzle-orm";
import type { Config } from "../config.ts";
import { database } from "../db/client.ts";
import { tokenizers } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { allows, taskAccess } from "./object-access.ts";
import { presign, signerOf } from "./presign.ts";
import { checkHolder, loadTask, type WorkerPrincipal } from "./task-queue.ts";
import { manifestFiles, manifestOf } from "./tokenizers.ts";

function notGranted(object: ObjectRequest, why: string): HttpProblem {
  return new HttpProblem(
    403,
    "object-not-granted",
    `This task may not ${object.method === "GET" ? "read" : "write"} ${JSON.stringify(object.key)}: ${why}.`,
  );
}

/**
 * A new tokenizer's file goes under tokenizers/{hash}/files/. Where a tokenizer of that hash is
 * registered already (by anyone), the write must be the very file its manifest pins there: a
 * worker can repeat a registered tokenizer's bytes, never change them.
 */
async function checkTokenizerWrites(env: Env, puts: Extract<ObjectRequest, { method: "PUT" }>[]) {
  const hashes = [...new Set(puts.map((p) => tokenizerFileHash(p.key) as string))];
  if (hashes.length === 0) return;
  const registered = await database(env)
    .select()
    .from(tokenizers)
    .where(inArray(tokenizers.manifestHash, hashes));
  for (const put of puts) {
    const hash = tokenizerFileHash(put.key) as string;
    const path = put.key.slice(`tokenizers/${hash}/files/`.length);
    for (const row of registered.filter((r) => r.manifestHash === hash)) {
      const pinned = manifestFiles(manifestOf(row)).find((f) => f.path === path);
      if (pinned?.sha256 !== put.sha256) {
        throw notGranted(put, `tokenizer ${hash} is registered and pins other bytes there`);
      }
    }
  }
}

export async function grantObjects(
  env: Env,
  worker: WorkerPrincipal,
  taskId: string,
  request: ObjectsRequest,
  config: Config,
  origin: string,
): Promise<ObjectsResponse> {
  const task = await loadTask(env.DB, worker.tenantId, taskId);
  checkHolder(task, request.leaseId);
  const { access, writesTokenizerFiles } = taskAccess(
    task.tenant_id,
    TaskPayload.parse(JSON.parse(task.payload)),
  );
  const tokenizerPuts: Extract<ObjectRequest, { method: "PUT" }>[] = [];
  for (const object of request.objects) {
    if (!isPlainKey(object.key)) throw notGranted(object, "not a plain bucket key");
    if (allows(access, object.method, object.key)) continue;
    if (writesTokenizerFiles && object.method === "PUT" && tokenizerFileHash(object.key)) {
      tokenizerPuts.push(object);
      continue;
    }
    throw notGranted(object, "its payload does not name it");
  }
  await checkTokenizerWrites(env, tokenizerPuts);

  const signer = signerOf(env, origin);
  const now = Date.now();
  return {
    objects: await Promise.all(
      request.objects.map(async (object) => ({
        key: object.key,
        ...(await presign(signer, object, object.key, config.objectUrlSeconds, now)),
      })),
    ),
  };
}
