/**
 * One edge with the tiny tokenizer registered, and a tenant per test, plus the client-side calls
 * the tests make: upload, create a job, wait for it, read its events.
 */

import type { LocalEdge } from "./edge.ts";
import { type BuiltTokenizer, buildTinyTokenizer, type ImageFormat } from "./tiny-tokenizer.ts";

export type Job = {
  id: string;
  status: string;
  attempts: number;
  /** A train job's: the tokenizer it made, once it has (its base is `baseTokenizer`). */
  tokenizer: { id: string; manifestHash: string } | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  /** A train job's: its tokenizer's held-out evaluation, once known. */
  evaluation?: Record<string, unknown>;
};
export type JobEvent = {
  id: number;
  type: string;
  data: Record<string, unknown>;
  createdAt: string;
};
export type Tenant = { tenantId: string; apiKey: string; workerKey: string };

const MEDIA: Record<ImageFormat, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
};

/** Registers the tokenizer through the admin API: the manifest, then each file. */
export async function registerTokenizer(edge: LocalEdge, built: BuiltTokenizer): Promise<string> {
  const registered = await edge.api<{ tokenizer: { id: string } }>(
    "POST",
    "/v1/admin/tokenizers",
    edge.adminKey,
    built.manifest,
  );
  const id = registered.tokenizer.id;
  for (const [path, bytes] of built.files) {
    await edge.api("PUT", `/v1/admin/tokenizers/${id}/files/${path}`, edge.adminKey, bytes, {
      "content-type": "application/octet-stream",
    });
  }
  return id;
}

export async function tinyTokenizerOn(
  edge: LocalEdge,
): Promise<{ built: BuiltTokenizer; id: string }> {
  const built = await buildTinyTokenizer();
  return { built, id: await registerTokenizer(edge, built) };
}

export async function upload(
  edge: LocalEdge,
  tenant: Tenant,
  images: { bytes: Uint8Array; format: ImageFormat }[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const image of images) {
    const answer = await edge.api<{ images: { id: string }[] }>(
      "POST",
      "/v1/images",
      tenant.apiKey,
      image.bytes,
      { "content-type": MEDIA[image.format] },
    );
    ids.push(answer.images[0].id);
  }
  return ids;
}

export function createJob(
  edge: LocalEdge,
  tenant: Tenant,
  body: Record<string, unknown>,
): Promise<Job> {
  return edge.api<Job>("POST", "/v1/jobs", tenant.apiKey, body);
}

/** Polls the job until it is finished (or `until` holds), failing after `ms`. */
export async function waitForJob(
  edge: LocalEdge,
  tenant: Tenant,
  id: string,
  until: (job: Job) => boolean = (job) => ["succeeded", "failed", "cancelled"].includes(job.status),
  ms = 60_000,
): Promise<Job> {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await edge.api<Job>("GET", `/v1/jobs/${id}`, tenant.apiKey);
    if (until(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function jobEvents(edge: LocalEdge, tenant: Tenant, id: string): Promise<JobEvent[]> {
  const answer = await edge.api<{ events: JobEvent[] }>(
    "GET",
    `/v1/jobs/${id}/events?limit=500`,
    tenant.apiKey,
  );
  return answer.events;
}

/** The job's status changes, in order, as "status" or "status(reason)". */
export async function statusTrail(edge: LocalEdge, tenant: Tenant, id: string): Promise<string[]> {
  return (await jobEvents(edge, tenant, id))
    .filter((e) => e.type === "status")
    .map((e) => (e.data.reason ? `${e.data.status}(${e.data.reason})` : String(e.data.status)));
}

export async function bytesOf(edge: LocalEdge, path: string, key: string, init: RequestInit = {}) {
  const response = await fetch(`${edge.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${key}`, ...(init.headers ?? {}) },
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return new Uint8Array(await response.arrayBuffer());
}
