/**
 * Tokenizers: registration of a manifest, its files in the bucket, and which tenant sees which.
 * The manifest is validated by shared's parseManifest and stored as canonical JSON, so the hash
 * any client computes from the served manifest is the tokenizer's identity.
 */
import {
  bucketKeys,
  canonicalJson,
  manifestFiles,
  manifestHash,
  parseManifest,
  type TokenizerManifest,
} from "@revq/shared";
import { and, asc, desc, eq, inArray, isNull, ne, or, type SQL, sql } from "drizzle-orm";
import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import { tenants, tokenizers } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { HttpProblem } from "../problem.ts";
import { isoTime } from "../schemas/common.ts";
import { newId } from "./ids.ts";

export const PUBLIC_OWNER = "public";

export type TokenizerRow = typeof tokenizers.$inferSelect;

export type FileProblem = { path: string; problem: string };

/** Refuses a tokenizer whose files are not all in the bucket yet (409 tokenizer-not-ready). */
export function requireReady(row: TokenizerRow): TokenizerRow {
  if (row.status !== "ready") {
    throw new HttpProblem(
      409,
      "tokenizer-not-ready",
      `Tokenizer ${row.id} is still waiting for its files.`,
    );
  }
  return row;
}

export function manifestOf(row: TokenizerRow): TokenizerManifest {
  return parseManifest(JSON.parse(row.manifest));
}

/**
 * Files that are not in the bucket as the manifest pins them: absent, of another size, or
 * stored with a SHA-256 checksum that differs. (Objects put through the S3 door without a
 * checksum are trusted by size; uploads through the edge are always checked.)
 */
export async function fileProblems(bucket: R2Bucket, hash: string, manifest: TokenizerManifest) {
  const problems: FileProblem[] = [];
  await Promise.all(
    manifestFiles(manifest).map(async (ref) => {
      const head = await bucket.head(bucketKeys.tokenizerFile(hash, ref.path));
      const stored = head?.checksums.sha256 ? hex(head.checksums.sha256) : undefined;
      if (!head) problems.push({ path: ref.path, problem: "missing" });
      else if (head.size !== ref.bytes)
        problems.push({ path: ref.path, problem: `${head.size} bytes, not ${ref.bytes}` });
      else if (stored !== undefined && stored !== ref.sha256)
        problems.push({ path: ref.path, problem: "sha256 differs" });
    }),
  );
  return problems.sort((a, b) => (a.path < b.path ? -1 : 1));
}

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What registering does when one of the owner's other live tokenizers has the manifest's name: a
 * tenant's own upload is refused (409), while a training's result gets its id after the name, so
 * that hours of training are never lost to a name.
 */
export type NameClash = "refuse" | "rename";

/**
 * Registers a manifest for `owner`, or returns the existing registration of the same manifest.
 * The tokenizer is ready at once if its files are already in the bucket.
 */
export async function registerTokenizer(
  env: Env,
  db: Db,
  owner: string,
  json: unknown,
  onNameClash: NameClash = "rename",
) {
  const manifest = parseManifest(json);
  const hash = await manifestHash(manifest);
  const [existing] = await db
    .select()
    .from(tokenizers)
    .where(and(eq(tokenizers.owner, owner), eq(tokenizers.manifestHash, hash)))
    .limit(1);
  if (existing) {
    let restored = existing;
    if (existing.deletedAt !== null) {
      // Registered again after its tenant deleted it (the same training, say): it is back, under
      // its name unless another has taken that since.
      const name = await freeName(db, owner, existing.name, existing.id, onNameClash);
      await db
        .update(tokenizers)
        .set({ deletedAt: null, name })
        .where(eq(tokenizers.id, existing.id));
      restored = { ...existing, deletedAt: null, name };
    }
    return { ...(await refreshStatus(env, db, restored)), created: false };
  }

  const now = Date.now();
  const id = newId("tok", now);
  const name = await freeName(db, owner, manifest.name, id, onNameClash);
  const canonical = canonicalJson(manifest);
  await env.BUCKET.put(bucketKeys.tokenizerManifest(hash), canonical, {
    httpMetadata: { contentType: "application/json" },
  });
  const problems = await fileProblems(env.BUCKET, hash, manifest);
  const row: TokenizerRow = {
    id,
    owner,
    manifestHash: hash,
    name,
    manifest: canonical,
    status: problems.length === 0 ? "ready" : "pending",
    createdAt: now,
    readyAt: problems.length === 0 ? now : null,
    deletedAt: null,
  };
  await db.insert(tokenizers).values(row);
  return { row, created: true, problems };
}

/**
 * The name tokenizer `id` is registered under: `name` if no other live tokenizer of the owner
 * has it (public ones may share names), else refused or followed by the id (unique, as ids are).
 */
async function freeName(
  db: Db,
  owner: string,
  name: string,
  id: string,
  onClash: NameClash,
): Promise<string> {
  if (owner === PUBLIC_OWNER) return name;
  const holder = await nameHolder(db, owner, name, id);
  if (holder === undefined) return name;
  if (onClash === "refuse") throw nameTaken(holder, name);
  return `${name} (${id})`;
}

/** Another live tokenizer of the owner that has this name, if one does. */
async function nameHolder(
  db: Db,
  owner: string,
  name: string,
  exceptId: string,
): Promise<string | undefined> {
  const [holder] = await db
    .select({ id: tokenizers.id })
    .from(tokenizers)
    .where(
      and(
        eq(tokenizers.owner, owner),
        eq(tokenizers.name, name),
        isNull(tokenizers.deletedAt),
        ne(tokenizers.id, exceptId),
      ),
    )
    .limit(1);
  return holder?.id;
}

function nameTaken(holderId: string, name: string): HttpProblem {
  return new HttpProblem(
    409,
    "tokenizer-name-taken",
    `The tenant's tokenizer ${holderId} is already named ${JSON.stringify(name)}.`,
  );
}

/**
 * A live tokenizer of `owner` by id, to store its files: another owner's (or a deleted one) is a
 * 404 that says whose were looked among (`whose`: "the public ones", "this tenant's own").
 */
export async function ownedTokenizer(
  db: Db,
  owner: string,
  id: string,
  whose: string,
): Promise<TokenizerRow> {
  const [row] = await db
    .select()
    .from(tokenizers)
    .where(and(eq(tokenizers.id, id), eq(tokenizers.owner, owner), isNull(tokenizers.deletedAt)))
    .limit(1);
  if (!row) throw new HttpProblem(404, "tokenizer-not-found", `No tokenizer ${id} among ${whose}.`);
  return row;
}

/** Marks a pending tokenizer ready if all its files are now in place. */
export async function refreshStatus(env: Env, db: Db, row: TokenizerRow) {
  const problems = await fileProblems(env.BUCKET, row.manifestHash, manifestOf(row));
  if (problems.length === 0 && row.status !== "ready") {
    const readyAt = Date.now();
    await db.update(tokenizers).set({ status: "ready", readyAt }).where(eq(tokenizers.id, row.id));
    return { row: { ...row, status: "ready" as const, readyAt }, problems };
  }
  return { row, problems };
}

/**
 * Stores one file of a tokenizer from a request body, checking its size and SHA-256 against the
 * manifest; R2 refuses the object itself if the digest differs, so nothing wrong is kept.
 */
export async function storeTokenizerFile(
  bucket: R2Bucket,
  row: TokenizerRow,
  path: string,
  body: ReadableStream<Uint8Array> | null,
  contentLength: number | undefined,
) {
  const ref = manifestFiles(manifestOf(row)).find((f) => f.path === path);
  if (!ref)
    throw new HttpProblem(
      404,
      "file-not-in-manifest",
      `The manifest of ${row.id} names no file ${JSON.stringify(path)}.`,
    );
  if (contentLength === undefined) {
    throw new HttpProblem(411, "length-required", "Send the file with a Content-Length header.");
  }
  if (contentLength !== ref.bytes) {
    throw new HttpProblem(
      422,
      "file-size-mismatch",
      `${path} must be ${ref.bytes} bytes as the manifest says; the body has ${contentLength}.`,
    );
  }
  const digest = new crypto.DigestStream("SHA-256");
  const sized = new FixedLengthStream(ref.bytes);
  const [toBucket, toDigest] = (body ?? new Blob([]).stream()).tee();
  const hashed = toDigest.pipeTo(digest);
  const stored = bucket
    .put(bucketKeys.tokenizerFile(row.manifestHash, path), sized.readable, { sha256: ref.sha256 })
    .then(
      () => true,
      (error: unknown) => error,
    );
  await toBucket.pipeTo(sized.writable);
  await hashed;
  const actual = hex(await digest.digest);
  const outcome = await stored;
  if (actual !== ref.sha256) {
    throw new HttpProblem(
      422,
      "file-hash-mismatch",
      `${path} has SHA-256 ${actual}; the manifest says ${ref.sha256}.`,
    );
  }
  if (outcome !== true) throw outcome;
  return ref;
}

/** Stores one file of `row` from a request's body (see storeTokenizerFile); its status after. */
export async function storeTokenizerFileFrom(
  env: Env,
  db: Db,
  row: TokenizerRow,
  path: string,
  request: Request,
) {
  const length = request.headers.get("content-length");
  await storeTokenizerFile(
    env.BUCKET,
    row,
    path,
    request.body,
    length === null ? undefined : Number(length),
  );
  return refreshStatus(env, db, row);
}

/** A registration as the API answers it (@revq/shared's TokenizerRegistration). */
export function registrationView(registration: { row: TokenizerRow; problems: FileProblem[] }) {
  return { tokenizer: tokenizerView(registration.row), fileProblems: registration.problems };
}

/** The tokenizers a tenant may use: the public ones and its own, less those it deleted. */
export function visibleTo(tenantId: string, options: Lookup = {}): SQL | undefined {
  const owned = inArray(tokenizers.owner, [PUBLIC_OWNER, tenantId]);
  return options.deleted ? owned : and(owned, isNull(tokenizers.deletedAt));
}

/** `deleted`: find deleted tokenizers too (to decode tokens made before the deletion). */
export type Lookup = { deleted?: boolean };

/**
 * A tokenizer by id, manifest hash or name, if the tenant may see it; otherwise a 404. A name
 * is the tenant's own tokenizer of that name before a public one, the newest if it trained
 * several under one name.
 */
export async function findTokenizer(
  db: Db,
  tenantId: string,
  reference: string,
  options: Lookup = {},
): Promise<TokenizerRow> {
  const [exact] = await db
    .select()
    .from(tokenizers)
    .where(
      and(
        visibleTo(tenantId, options),
        or(eq(tokenizers.id, reference), eq(tokenizers.manifestHash, reference)),
      ),
    )
    .orderBy(tokenizers.createdAt)
    .limit(1);
  if (exact) return exact;
  const [named] = await db
    .select()
    .from(tokenizers)
    .where(and(visibleTo(tenantId, options), eq(tokenizers.name, reference)))
    .orderBy(asc(sql`${tokenizers.owner} = ${PUBLIC_OWNER}`), desc(tokenizers.createdAt))
    .limit(1);
  if (!named) throw new HttpProblem(404, "tokenizer-not-found", `No tokenizer ${reference}.`);
  return named;
}

/** The ready tokenizer `reference` names for this tenant, for a job or a decode (422 if none). */
export async function readyTokenizer(
  db: Db,
  tenantId: string,
  reference: string,
  options: Lookup = {},
): Promise<TokenizerRow> {
  try {
    return requireReady(await findTokenizer(db, tenantId, reference, options));
  } catch (error) {
    if (error instanceof HttpProblem && error.status === 404) {
      throw new HttpProblem(
        422,
        "tokenizer-not-found",
        `No tokenizer ${reference} is available to this tenant.`,
      );
    }
    throw error;
  }
}

/** The tokenizer a tenant's request that names none uses: its own default, else the deployment's. */
export async function defaultTokenizer(
  db: Db,
  config: Config,
  tenantId: string,
): Promise<{ reference: string; from: "tenant" | "deployment" } | undefined> {
  const [tenant] = await db
    .select({ id: tenants.defaultTokenizerId })
    .from(tenants)
    .where(eq(tenants.id, tenantId));
  if (tenant?.id) return { reference: tenant.id, from: "tenant" };
  return config.defaultTokenizer === undefined
    ? undefined
    : { reference: config.defaultTokenizer, from: "deployment" };
}

/** A tokenizer as the client API shows it (@revq/shared's Tokenizer). */
export function tokenizerView(row: TokenizerRow) {
  const manifest = manifestOf(row);
  return {
    id: row.id,
    name: row.name,
    manifestHash: row.manifestHash,
    owner: row.owner === PUBLIC_OWNER ? ("public" as const) : ("tenant" as const),
    status: row.status,
    quantizer: manifest.quantizer,
    files: manifestFiles(manifest).map(({ path, bytes, sha256 }) => ({ path, bytes, sha256 })),
    ...(manifest.evaluation ? { evaluation: manifest.evaluation } : {}),
    createdAt: isoTime(row.createdAt),
    readyAt: row.readyAt === null ? null : isoTime(row.readyAt),
  };
}

/** One of the tenant's own tokenizers (404 if it is not; 403 for a public one). */
async function ownTokenizer(db: Db, tenantId: string, reference: string): Promise<TokenizerRow> {
  const row = await findTokenizer(db, tenantId, reference);
  if (row.owner !== tenantId) {
    throw new HttpProblem(
      403,
      "tokenizer-not-owned",
      `Tokenizer ${row.id} is public: only a tenant's own tokenizers can be renamed or deleted.`,
    );
  }
  return row;
}

/** Renames one of the tenant's tokenizers; names are unique among its own (409 otherwise). */
export async function renameTokenizer(
  db: Db,
  tenantId: string,
  reference: string,
  name: string,
): Promise<TokenizerRow> {
  const row = await ownTokenizer(db, tenantId, reference);
  const holder = await nameHolder(db, tenantId, name, row.id);
  if (holder !== undefined) throw nameTaken(holder, name);
  await db.update(tokenizers).set({ name }).where(eq(tokenizers.id, row.id));
  return { ...row, name };
}

/**
 * Deletes one of the tenant's tokenizers: no new job may use it, and it is no longer the
 * tenant's default. Jobs already queued finish with it, and tokens made with it still decode
 * (POST /v1/decode finds it by the hash they carry); its files stay in the bucket.
 */
export async function deleteTokenizer(db: Db, tenantId: string, reference: string): Promise<void> {
  const row = await ownTokenizer(db, tenantId, reference);
  await db.batch([
    db.update(tokenizers).set({ deletedAt: Date.now() }).where(eq(tokenizers.id, row.id)),
    db
      .update(tenants)
      .set({ defaultTokenizerId: null })
      .where(and(eq(tenants.id, tenantId), eq(tenants.defaultTokenizerId, row.id))),
  ]);
}
