/**
 * Presigned S3 URLs for single objects of the bucket (AWS Signature V4 in the query string,
 * signed by aws4fetch): what a worker uses instead of a credential of its own. The edge holds
 * the bucket's S3 access key as a secret; a URL it signs allows one method on one key until it
 * expires, and a PUT only with the body whose SHA-256 it was signed for.
 */
import type { GrantedObject } from "@revq/shared";
import { AwsClient } from "aws4fetch";
import type { Env } from "../../env.ts";
import { HttpProblem } from "../../problem.ts";

export type Signer = { client: AwsClient; bucketUrl: string };

/**
 * The signer for `env`'s bucket. A relative S3_ENDPOINT is a path on the edge's own origin
 * (`origin`): wrangler dev serves the local bucket's S3 API there.
 */
export function signerOf(env: Env, origin: string): Signer {
  if (!signsUrls(env)) {
    throw new HttpProblem(
      503,
      "bucket-urls-not-configured",
      "This edge cannot grant bucket URLs to workers: S3_ENDPOINT, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set (docs/deploy.md).",
    );
  }
  const { S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY } = env;
  let endpoint: URL;
  try {
    endpoint = new URL(S3_ENDPOINT, origin);
  } catch {
    throw new HttpProblem(500, "misconfigured", `S3_ENDPOINT is not a URL: ${S3_ENDPOINT}`);
  }
  const client = new AwsClient({
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: S3_SECRET_ACCESS_KEY,
    service: "s3",
    region: env.S3_REGION || "auto",
  });
  const base = endpoint.href.replace(/\/+$/, "");
  return { client, bucketUrl: `${base}/${encodeURIComponent(env.S3_BUCKET || "revq")}/` };
}

type SigningEnv = Env &
  Required<Pick<Env, "S3_ENDPOINT" | "S3_ACCESS_KEY_ID" | "S3_SECRET_ACCESS_KEY">>;

/** Whether this edge has what signing bucket URLs takes. */
export function signsUrls(env: Env): env is SigningEnv {
  return Boolean(env.S3_ENDPOINT && env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY);
}

/** A base64 SHA-256, as S3's x-amz-checksum-sha256 carries it, from lowercase hex. */
function base64Sha256(hex: string): string {
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return btoa(String.fromCharCode(...bytes));
}

/** A URL for `method` on `key` (a plain key), valid for `seconds` from `now`. */
export async function presign(
  signer: Signer,
  request: { method: "GET" } | { method: "PUT"; sha256: string },
  key: string,
  seconds: number,
  now: number,
): Promise<Omit<GrantedObject, "key">> {
  const url = `${signer.bucketUrl}${key.split("/").map(encodeURIComponent).join("/")}?X-Amz-Expires=${seconds}`;
  const headers: Record<string, string> =
    request.method === "PUT" ? { "x-amz-checksum-sha256": base64Sha256(request.sha256) } : {};
  const signed = await signer.client.sign(url, {
    method: request.method,
    headers,
    aws: { signQuery: true, allHeaders: true, datetime: amzDate(now) },
  });
  return {
    method: request.method,
    url: signed.url,
    headers,
    expiresAt: new Date(now + seconds * 1000).toISOString(),
  };
}

/** 20261202T031500Z: the signing time, the same clock as expiresAt. */
function amzDate(now: number): string {
  return new Date(now).toISOString().replace(/[:-]|\.\d{3}/g, "");
}
