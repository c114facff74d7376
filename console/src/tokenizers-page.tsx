/**
 * Tokenizers the tenant can use (its own and the public ones): the list, and one tokenizer with
 * its held-out evaluation, its files and their downloads (the manifest exactly as hashed, and
 * each file the manifest pins).
 */
import type { Tokenizer } from "@revq/shared";
import { tokenizerFilePath } from "./api.ts";
import { DownloadButton } from "./auth-image.tsx";
import { DetailPage, Field } from "./detail-page.tsx";
import { ErrorNote } from "./error-note.tsx";
import { Evaluation } from "./evaluation.tsx";
import { when } from "./format.ts";
import { href } from "./hash-route.ts";
import { usePoll } from "./use-poll.ts";

const REFRESH_MS = 10_000;

function shape(t: Tokenizer): string {
  const { tokens, groups, codesPerGroup } = t.quantizer;
  return `${tokens} tokens × ${codesPerGroup} codes${groups > 1 ? `, ${groups} groups` : ""}`;
}

function headline(t: Tokenizer): string {
  const psnr = t.evaluation?.images?.tokens.psnr;
  return psnr === undefined ? "—" : `${psnr.toFixed(2)} dB`;
}

export function TokenizersPage() {
  const page = usePoll(
    (api) => api.get<{ tokenizers: Tokenizer[] }>("/v1/tokenizers?status=all"),
    [],
    REFRESH_MS,
  );
  const tokenizers = page.data?.tokenizers;
  return (
    <section>
      <h1>Tokenizers</h1>
      <ErrorNote error={page.error} />
      {!tokenizers ? (
        page.error === undefined && <p class="loading">Loading the tokenizers…</p>
      ) : tokenizers.length === 0 ? (
        <div class="empty">
          <p>No tokenizers yet.</p>
          <p>
            A deployment registers its default one; a train job (<code>revq train</code>) makes your
            own.
          </p>
        </div>
      ) : (
        <table class="list">
          <thead>
            <tr>
              <th>name</th>
              <th>owner</th>
              <th>shape</th>
              <th>PSNR from tokens</th>
              <th>status</th>
              <th>created</th>
            </tr>
          </thead>
          <tbody>
            {tokenizers.map((t) => (
              <tr key={t.id} data-tokenizer={t.id}>
                <td>
                  <a href={href(["tokenizers", t.id])}>{t.name}</a>
                </td>
                <td>{t.owner === "public" ? "public" : "yours"}</td>
                <td>{shape(t)}</td>
                <td>{headline(t)}</td>
                <td>{t.status}</td>
                <td>{when(t.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function TokenizerPage({ id }: { id: string }) {
  const path = `/v1/tokenizers/${encodeURIComponent(id)}`;
  const polled = usePoll(
    (api) => api.get<Tokenizer>(path),
    [id],
    REFRESH_MS,
    (t) => t.status !== "ready",
  );
  return (
    <DetailPage
      list="tokenizers"
      title={polled.data ? polled.data.name : <code>{id}</code>}
      error={polled.error}
      data={polled.data}
      loading="the tokenizer"
    >
      {(tokenizer) => (
        <>
          <dl class="fields">
            <Field name="id">
              <code>{tokenizer.id}</code>
            </Field>
            <Field name="manifest hash">
              <code>{tokenizer.manifestHash}</code>
            </Field>
            <Field name="shape">{shape(tokenizer)}</Field>
            <Field name="owner">{tokenizer.owner === "public" ? "public" : "this tenant"}</Field>
            <Field name="ready">
              {tokenizer.status === "ready" ? when(tokenizer.readyAt) : "not yet: files missing"}
            </Field>
          </dl>
          <h2>Evaluation</h2>
          <Evaluation
            evaluation={tokenizer.evaluation}
            missing="No evaluation: this tokenizer was registered without one."
          />
          <h2>Files</h2>
          <table class="list files">
            <thead>
              <tr>
                <th>path</th>
                <th>bytes</th>
                <th>SHA-256</th>
                <th />
              </tr>
            </thead>
            <tbody>
              <tr data-file="manifest.json">
                <td>
                  <code>manifest.json</code>
                </td>
                <td>—</td>
                <td>its SHA-256 is the manifest hash</td>
                <td>
                  <DownloadButton
                    path={`${path}/manifest.json`}
                    name="manifest.json"
                    label="Download"
                  />
                </td>
              </tr>
              {tokenizer.files.map((file) => (
                <tr key={file.path} data-file={file.path}>
                  <td>
                    <code>{file.path}</code>
                  </td>
                  <td>{file.bytes}</td>
                  <td>
                    <code class="hash">{file.sha256}</code>
                  </td>
                  <td>
                    <DownloadButton
                      path={tokenizerFilePath(tokenizer.id, file.path)}
                      name={file.path.split("/").pop() ?? file.path}
                      label="Download"
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </DetailPage>
  );
}
