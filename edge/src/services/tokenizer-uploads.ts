/**
 * A tokenizer a tenant trained offline (`revq-train`) and uploads under its own key: the
 * manifest first, then each file the answer says is missing. A file the bucket already holds
 * under another tokenizer the tenant can see (its base's VAE weights, typically: hundreds of MB
 * for DC-AE) is copied inside the bucket instead, checked against the same SHA-256.
 */
import { bucketKeys, type FileRef, manifestFiles, TokenizerName } from "@revq/shared";
import { and, eq, ne, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { tokenizers } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { invalidRequest } from "../problem.ts";
import {
  manifestOf,
  refreshStatus,
  registerTokenizer,
  type TokenizerRow,
  visibleTo,
} from "./tokenizers.ts";

/** Registers the tenant's manifest (its name unique among the tenant's), adopting known files. */
export async function uploadTokenizer(env: Env, db: Db, tenantId: string, json: unknown) {
  const name = TokenizerName.safeParse((json as { name?: unknown } | null)?.name);
  if (!name.success) throw invalidRequest("json.name", name.error.issues, "Invalid manifest name");
  const registered = await registerTokenizer(env, db, tenantId, json, "refuse");
  if (registered.problems.length === 0) return registered;
  const missing = new Set(registered.problems.map((p) => p.path));
  const refs = manifestFiles(manifestOf(registered.row)).filter((ref) => missing.has(ref.path));
  for (const ref of refs) await adoptKnownFile(env, db, tenantId, registered.row, ref);
  return { ...(await refreshStatus(env, db, registered.row)), created: registered.created };
}

/**
 * Copies `ref` from a ready tokenizer the tenant can see that holds a file of the same SHA-256
 * and size, if one does; R2 checks the digest of what it writes, so a wrong copy is not kept.
 */
async function adoptKnownFile(
  env: Env,
  db: Db,
  tenantId: string,
  row: TokenizerRow,
  ref: FileRef,
): Promise<void> {
  const candidates = await db
    .select()
    .from(tokenizers)
    .where(
      and(
        visibleTo(tenantId, { deleted: true }),
        eq(tokenizers.status, "ready"),
        ne(tokenizers.id, row.id),
        // A cheap filter (D1 refuses LIKE patterns this long): the manifest decides below.
        sql`instr(${tokenizers.manifest}, ${ref.sha256}) > 0`,
      ),
    )
    .limit(4);
  for (const source of candidates) {
    const same = manifestFiles(manifestOf(source)).find(
      (file) => file.sha256 === ref.sha256 && file.bytes === ref.bytes,
    );
    if (!same) continue;
    const object = await env.BUCKET.get(bucketKeys.tokenizerFile(source.manifestHash, same.path));
    if (!object) continue;
    const sized = new FixedLengthStream(ref.bytes);
    try {
      await Promise.all([
        env.BUCKET.put(bucketKeys.tokenizerFile(row.manifestHash, ref.path), sized.readable, {
          sha256: ref.sha256,
        }),
        object.body.pipeTo(sized.writable),
      ]);
      return;
    } catch {
      // Not the file after all (R2 refused the digest): the next one, or the client sends it.
    }
  }
}
