/**
 * Presigned bucket URLs for the current holder of a task, for the objects its payload names
 * (access.ts) and nothing else: a worker holds no bucket credential, so a tenant's GPU box
 * can reach only what its own tasks need, and never another tenant's objects.
 */
import {
  bucketKeys,
  type GrantedObject,
  isPlainKey,
  manifestFiles,
  type ObjectRequest,
  type ObjectsRequest,
  type ObjectsResponse,
  TaskPayload,
  tokenizerFileHash,
} from "@revq/shared";
import { inArray } from "drizzle-orm";
import type { Config } from "../../config.ts";
import { database } from "../../db/client.ts";
import { tokenizers } from "../../db/schema.ts";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";
import { checkHolder, loadTask, type WorkerPrincipal } from "../queue/tasks.ts";
import { manifestOf } from "../tokenizers.ts";
import { allows, taskAccess, taskInputs } from "./access.ts";
import { presign, signerOf, signsUrls } from "./presign.ts";

function notGranted(object: ObjectRequest, why: string): HttpProblem {
  return new HttpProblem(
    403,
    "object-not-granted",
    `This task may not ${object.method === "GET" ? "read" : "write"} ${JSON.stringify(object.key)}: ${why}.`,
  );
}

type TokenizerWrite = { object: ObjectRequest & { method: "PUT" }; hash: string; path: string };

/**
 * A new tokenizer's file goes under tokenizers/{hash}/files/. Where a tokenizer of that hash is
 * registered already (by anyone), the write must be the very file its manifest pins there: a
 * worker can repeat a registered tokenizer's bytes, never change them.
 */
async function checkTokenizerWrites(env: Env, writes: TokenizerWrite[]) {
  if (writes.length === 0) return;
  const registered = await database(env)
    .select()
    .from(tokenizers)
    .where(inArray(tokenizers.manifestHash, [...new Set(writes.map((w) => w.hash))]));
  for (const { object, hash, path } of writes) {
    for (const row of registered.filter((r) => r.manifestHash === hash)) {
      const pinned = manifestFiles(manifestOf(row)).find((f) => f.path === path);
      if (pinned?.sha256 !== object.sha256) {
        throw notGranted(object, `tokenizer ${hash} is registered and pins other bytes there`);
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
  const task = await loadTask(database(env), worker.tenantId, taskId);
  checkHolder(task, request.leaseId);
  const { access, writesTokenizerFiles } = taskAccess(
    task.tenantId,
    TaskPayload.parse(task.payload),
  );
  const tokenizerWrites: TokenizerWrite[] = [];
  for (const object of request.objects) {
    if (!isPlainKey(object.key)) throw notGranted(object, "not a plain bucket key");
    if (allows(access, object.method, object.key)) continue;
    const hash = tokenizerFileHash(object.key);
    if (writesTokenizerFiles && object.method === "PUT" && hash) {
      const path = object.key.slice(bucketKeys.tokenizerFile(hash, "").length);
      tokenizerWrites.push({ object, hash, path });
      continue;
    }
    throw notGranted(object, "its payload does not name it");
  }
  await checkTokenizerWrites(env, tokenizerWrites);

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

/**
 * GET URLs for what a task just leased reads first (access.ts, taskInputs), sent with its lease;
 * none where this edge signs no URLs (the worker's own call then says why).
 */
export async function grantInputs(
  env: Env,
  payload: TaskPayload,
  config: Config,
  origin: string,
  now: number,
): Promise<GrantedObject[]> {
  if (!signsUrls(env)) return [];
  const signer = signerOf(env, origin);
  return Promise.all(
    taskInputs(payload).map(async (key) => ({
      key,
      ...(await presign(signer, { method: "GET" }, key, config.objectUrlSeconds, now)),
    })),
  );
}
