/**
 * Webhooks: the tenant's endpoints (add one, its signing secret shown once; delete one), and one
 * endpoint's deliveries, newest first, each with every attempt's status code, and a button that
 * sends a delivery again (the edge queues it; the list shows the new attempt when it is made).
 */
import { WEBHOOK_EVENTS, type Webhook, type WebhookDelivery } from "@revq/shared";
import { useState } from "preact/hooks";
import { DetailPage } from "./detail-page.tsx";
import { ErrorNote } from "./error-note.tsx";
import { when } from "./format.ts";
import { href } from "./hash-route.ts";
import { useSession } from "./session-context.ts";
import { usePoll } from "./use-poll.ts";

const REFRESH_MS = 2000;

function AddWebhook({ onAdded }: { onAdded(): void }) {
  const { api } = useSession();
  const [url, setUrl] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(undefined);
  const add = async (event: Event) => {
    event.preventDefault();
    setFailure(undefined);
    try {
      const made = await api.post<Webhook & { secret: string }>("/v1/webhooks", { url });
      setSecret(made.secret);
      setUrl("");
      onAdded();
    } catch (error) {
      setFailure(error);
    }
  };
  return (
    <>
      <form class="inline-form" onSubmit={add}>
        <label for="webhook-url">New endpoint</label>
        <input
          id="webhook-url"
          value={url}
          placeholder="https://example.com/hooks/revq"
          onInput={(e) => setUrl((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Add</button>
      </form>
      <p class="muted">Every event: {WEBHOOK_EVENTS.join(", ")}.</p>
      {secret && (
        <p class="note secret">
          Its signing secret, shown only now: <code>{secret}</code>
        </p>
      )}
      <ErrorNote error={failure} />
    </>
  );
}

export function WebhooksPage() {
  const page = usePoll((api) => api.get<{ webhooks: Webhook[] }>("/v1/webhooks"), [], REFRESH_MS);
  const webhooks = page.data?.webhooks;
  return (
    <section>
      <h1>Webhooks</h1>
      <AddWebhook onAdded={page.reload} />
      <ErrorNote error={page.error} />
      {!webhooks ? (
        page.error === undefined && <p class="loading">Loading the endpoints…</p>
      ) : webhooks.length === 0 ? (
        <p class="empty">
          No endpoints. Add one above, or give a job its own <code>webhookUrl</code>.
        </p>
      ) : (
        <table class="list">
          <thead>
            <tr>
              <th>url</th>
              <th>events</th>
              <th>added</th>
            </tr>
          </thead>
          <tbody>
            {webhooks.map((w) => (
              <tr key={w.id} data-webhook={w.id}>
                <td>
                  <a href={href(["webhooks", w.id])}>{w.url}</a>
                </td>
                <td>{w.events.join(", ")}</td>
                <td>{when(w.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Attempts({ delivery }: { delivery: WebhookDelivery }) {
  if (delivery.attempts.length === 0) return <span class="muted">none yet</span>;
  return (
    <ol class="attempts">
      {delivery.attempts.map((a) => (
        <li key={a.attempt} data-attempt={a.attempt}>
          <span
            class={a.statusCode !== null && a.statusCode < 300 ? "code code-ok" : "code code-bad"}
          >
            {a.statusCode ?? "no answer"}
          </span>{" "}
          {a.error && <span class="muted">{a.error} </span>}
          <span class="muted">
            {a.durationMs} ms, {when(a.at)}
          </span>
        </li>
      ))}
    </ol>
  );
}

function RedeliverButton({ delivery, onDone }: { delivery: WebhookDelivery; onDone(): void }) {
  const { api } = useSession();
  const [failure, setFailure] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const redeliver = async () => {
    setBusy(true);
    setFailure(undefined);
    try {
      await api.post(`/v1/webhooks/deliveries/${encodeURIComponent(delivery.id)}/redeliver`);
      onDone();
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" disabled={busy} onClick={redeliver}>
        {busy ? "Queuing…" : "Redeliver"}
      </button>
      <ErrorNote error={failure} />
    </>
  );
}

type Endpoint = { webhook: Webhook | undefined; deliveries: WebhookDelivery[] };

export function WebhookPage({ id }: { id: string }) {
  const { api } = useSession();
  const path = `/v1/webhooks/${encodeURIComponent(id)}`;
  const polled = usePoll(
    async (api): Promise<Endpoint> => {
      const [{ webhooks }, { deliveries }] = await Promise.all([
        api.get<{ webhooks: Webhook[] }>("/v1/webhooks"),
        api.get<{ deliveries: WebhookDelivery[] }>(`${path}/deliveries?limit=50`),
      ]);
      return { webhook: webhooks.find((w) => w.id === id), deliveries };
    },
    [id],
    REFRESH_MS,
  );
  const [failure, setFailure] = useState<unknown>(undefined);
  const remove = async () => {
    try {
      await api.remove(path);
      location.hash = href(["webhooks"]);
    } catch (error) {
      setFailure(error);
    }
  };
  return (
    <DetailPage
      list="webhooks"
      title={polled.data?.webhook?.url ?? <code>{id}</code>}
      error={polled.error ?? failure}
      data={polled.data}
      loading="the deliveries"
    >
      {(endpoint) => (
        <>
          <div class="actions">
            <button type="button" onClick={remove}>
              Delete this endpoint
            </button>{" "}
            <span class="muted">its pending deliveries fail</span>
          </div>
          <h2>Deliveries</h2>
          {endpoint.deliveries.length === 0 ? (
            <p class="empty">No deliveries yet: they come as jobs end.</p>
          ) : (
            <table class="list deliveries">
              <thead>
                <tr>
                  <th>event</th>
                  <th>job</th>
                  <th>status</th>
                  <th>attempts</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {endpoint.deliveries.map((d) => (
                  <tr key={d.id} data-delivery={d.id}>
                    <td>{d.eventType}</td>
                    <td>
                      {d.jobId ? (
                        <a href={href(["jobs", d.jobId])}>
                          <code>{d.jobId}</code>
                        </a>
                      ) : (
                        "—"
                      )}
                    </td>
                    <td>
                      <span class={`status status-${d.status}`}>{d.status}</span>
                      {d.nextAttemptAt && <div class="muted">next try {when(d.nextAttemptAt)}</div>}
                    </td>
                    <td>
                      <Attempts delivery={d} />
                    </td>
                    <td>
                      <RedeliverButton delivery={d} onDone={polled.reload} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </DetailPage>
  );
}
