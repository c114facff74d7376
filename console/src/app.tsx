/**
 * The console's shell: the sign-in form until a key is accepted, then the header and the page
 * the URL's fragment names. A key kept from earlier in this tab is checked again on load; one
 * the edge now refuses sends the user back to the form, saying so.
 */
import { useEffect, useMemo, useState } from "preact/hooks";
import { apiClient, KeyRefused } from "./api.ts";
import { DatasetPage, DatasetsPage } from "./datasets-page.tsx";
import { ErrorNote } from "./error-note.tsx";
import { href, useRoute } from "./hash-route.ts";
import { JobPage } from "./job-page.tsx";
import { JobsPage } from "./jobs-page.tsx";
import { forgetKey, storedKey, storeKey } from "./session.ts";
import { type Session, SessionContext, type Tenant } from "./session-context.ts";
import { SignIn } from "./sign-in.tsx";
import { TokenizerPage, TokenizersPage } from "./tokenizers-page.tsx";
import { WebhookPage, WebhooksPage } from "./webhooks-page.tsx";

type State =
  | { kind: "signed-out"; notice: string | null }
  | { kind: "checking"; key: string; error?: unknown }
  | { kind: "signed-in"; key: string; tenant: Tenant };

function initial(): State {
  const key = storedKey();
  return key ? { kind: "checking", key } : { kind: "signed-out", notice: null };
}

const RECHECK_MS = 3000;

/** The header's links: each section's list page. */
const SECTIONS = [
  ["jobs", "Jobs"],
  ["datasets", "Datasets"],
  ["tokenizers", "Tokenizers"],
  ["webhooks", "Webhooks"],
] as const;

function Pages() {
  const route = useRoute();
  const [first, second] = route.path;
  if (first === "jobs" && second) return <JobPage id={second} />;
  if (first === undefined || first === "jobs") return <JobsPage route={route} />;
  if (first === "datasets") return second ? <DatasetPage id={second} /> : <DatasetsPage />;
  if (first === "tokenizers") return second ? <TokenizerPage id={second} /> : <TokenizersPage />;
  if (first === "webhooks") return second ? <WebhookPage id={second} /> : <WebhooksPage />;
  return (
    <p class="empty">
      Nothing lives at <code>{location.hash}</code>. <a href={href(["jobs"])}>See the jobs</a>.
    </p>
  );
}

export function App() {
  const [state, setState] = useState<State>(initial);

  const signOut = (notice?: string) => {
    forgetKey();
    setState({ kind: "signed-out", notice: notice ?? null });
  };

  // A key kept from before: ask the edge again, retrying while it does not answer.
  const checkingKey = state.kind === "checking" ? state.key : null;
  useEffect(() => {
    if (checkingKey === null) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = async () => {
      try {
        const tenant = await apiClient(checkingKey).get<Tenant>("/v1/tenant");
        if (!stopped) setState({ kind: "signed-in", key: checkingKey, tenant });
      } catch (error) {
        if (stopped) return;
        if (error instanceof KeyRefused) {
          signOut(`The edge refused the key kept in this tab: ${error.message}`);
        } else {
          setState({ kind: "checking", key: checkingKey, error });
          timer = setTimeout(check, RECHECK_MS);
        }
      }
    };
    void check();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [checkingKey]);

  const signedInKey = state.kind === "signed-in" ? state.key : null;
  const tenant = state.kind === "signed-in" ? state.tenant : null;
  // One session per accepted key, so that pages keep their state across renders.
  const session = useMemo<Session | null>(
    () => (signedInKey && tenant ? { api: apiClient(signedInKey), tenant, signOut } : null),
    [signedInKey],
  );

  if (state.kind === "signed-out") {
    return (
      <SignIn
        notice={state.notice}
        onSignedIn={(key, tenant) => {
          storeKey(key);
          setState({ kind: "signed-in", key, tenant });
        }}
      />
    );
  }
  if (!session) {
    return (
      <main class="sign-in">
        <h1>revq console</h1>
        {"error" in state && state.error !== undefined ? (
          <ErrorNote error={state.error} />
        ) : (
          <p class="loading">Signing in…</p>
        )}
        <button type="button" onClick={() => signOut()}>
          Use another key
        </button>
      </main>
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <header class="top">
        <a class="brand" href={href(["jobs"])}>
          revq console
        </a>
        <nav>
          {SECTIONS.map(([path, label]) => (
            <a key={path} href={href([path])}>
              {label}
            </a>
          ))}
        </nav>
        <span class="tenant" title={session.tenant.id}>
          {session.tenant.name}
        </span>
        <button type="button" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main>
        <Pages />
      </main>
    </SessionContext.Provider>
  );
}
