/**
 * The sign-in form: an API key, checked against GET /v1/tenant before it is kept, so that a
 * mistyped or revoked key, or an edge that is not there, is said at once and plainly.
 */
import { useState } from "preact/hooks";
import { apiClient, describeError, EdgeUnreachable, KeyRefused } from "./api.ts";
import type { Tenant } from "./session-context.ts";

export function SignIn(props: {
  notice: string | null;
  onSignedIn(key: string, tenant: Tenant): void;
}) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) return;
    setBusy(true);
    setFailure(null);
    try {
      const tenant = await apiClient(trimmed).get<Tenant>("/v1/tenant");
      props.onSignedIn(trimmed, tenant);
    } catch (error) {
      if (error instanceof KeyRefused) {
        setFailure(
          `The edge refused this key: ${error.message} Paste a tenant's API key (rvq_api_…); a worker key cannot sign in.`,
        );
      } else if (error instanceof EdgeUnreachable) {
        setFailure(`${error.message} Is it running? (npm start runs it on this machine.)`);
      } else {
        setFailure(describeError(error));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <h1>revq console</h1>
      {props.notice && (
        <p class="note note-error" role="alert">
          {props.notice}
        </p>
      )}
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          placeholder="rvq_api_…"
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy || !key.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
      {failure && (
        <p class="note note-error" role="alert">
          {failure}
        </p>
      )}
      <p class="muted">
        The key stays in this tab only (session storage) and goes to this edge alone, as the bearer
        header of each call. npm start prints one, and writes it to .revq/local.env.
      </p>
    </main>
  );
}
