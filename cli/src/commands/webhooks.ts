/** revq webhooks: endpoints that are told when jobs end, and their deliveries. */
import {
  WEBHOOK_EVENTS,
  WebhookCreated,
  WebhookDelivery,
  WebhookDeliveryList,
  WebhookList,
} from "@revq/shared";
import { positiveInt, stringOption } from "../args.ts";
import { COMMON_HELP, type Command, setup } from "../command.ts";
import { usageError } from "../errors.ts";
import { collectPages } from "../pages.ts";

const help = `usage: revq webhooks [list]
       revq webhooks add URL [--events E,E...]
       revq webhooks remove ID
       revq webhooks deliveries ID | --job JOB_ID [--limit N]
       revq webhooks redeliver DELIVERY_ID

Endpoints get a signed POST (Standard Webhooks) when a job ends; each delivery is retried for
about a day and every attempt is recorded (docs/api.md, "Webhooks").

  add          registers URL; prints its signing secret (whsec_...), shown only once
  remove       deletes an endpoint; its pending deliveries fail
  deliveries   an endpoint's deliveries (or a job's, with --job), newest first, with their
               attempts (--limit, default 20)
  redeliver    sends a delivery again

  --events <list>     comma-separated: ${WEBHOOK_EVENTS.join(", ")} [all]
  --job <id>          deliveries: those about this job
  --limit <n>         deliveries: at most this many [20]
${COMMON_HELP}`;

export const webhooks: Command = {
  name: "webhooks",
  summary: "register webhook endpoints, see and redeliver deliveries",
  help,
  async run(argv) {
    const s = setup(this, argv, {
      events: { type: "string" },
      job: { type: "string" },
      limit: { type: "string" },
    });
    if (!s) return;
    const [action = "list", arg, ...rest] = s.parsed.positionals;
    if (rest.length > 0) throw usageError(`unexpected ${rest.join(" ")}`);
    const need = (what: string) => {
      if (!arg) throw usageError(`revq webhooks ${action} needs ${what}`);
      return encodeURIComponent(arg);
    };
    const api = s.api();
    switch (action) {
      case "list": {
        const { webhooks: list } = await api.json("GET", "/v1/webhooks", WebhookList);
        s.out.result({ webhooks: list });
        if (list.length === 0) s.out.line("no webhook endpoints");
        for (const w of list) s.out.line(`${w.id}  ${w.url}  ${w.events.join(",")}`);
        return;
      }
      case "add": {
        if (!arg) throw usageError("revq webhooks add needs a URL");
        checkEndpointUrl(arg);
        const events = stringOption(s.parsed, "events")
          ?.split(",")
          .map((e) => e.trim());
        const unknown =
          events?.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e)) ?? [];
        if (unknown.length > 0) {
          throw usageError(
            `unknown event ${unknown.join(", ")}; events are ${WEBHOOK_EVENTS.join(", ")}`,
          );
        }
        const created = await api.json("POST", "/v1/webhooks", WebhookCreated, {
          body: { url: arg, ...(events ? { events } : {}) },
        });
        s.out.result(created);
        s.out.line(`${created.id}  ${created.url}  ${created.events.join(",")}`);
        s.out.line(`signing secret: ${created.secret}`);
        s.out.line(
          "Keep it now: it is not shown again. Verify deliveries with it (Standard Webhooks).",
        );
        return;
      }
      case "remove": {
        const id = need("an endpoint id");
        await api.call("DELETE", `/v1/webhooks/${id}`);
        s.out.result({ removed: arg });
        s.out.line(`removed ${arg}`);
        return;
      }
      case "deliveries": {
        const job = stringOption(s.parsed, "job");
        if (!job === !arg) throw usageError("give an endpoint id or --job, not both");
        const path = job
          ? `/v1/jobs/${encodeURIComponent(job)}/deliveries`
          : `/v1/webhooks/${need("an endpoint id")}/deliveries`;
        const limit = positiveInt(s.parsed, "limit") ?? 20;
        const deliveries = await collectPages(
          api,
          path,
          WebhookDeliveryList,
          (p) => p.deliveries,
          limit,
        );
        s.out.result({ deliveries });
        if (deliveries.length === 0) s.out.line("no deliveries");
        for (const d of deliveries) s.out.line(deliveryLine(d));
        return;
      }
      case "redeliver": {
        const id = need("a delivery id");
        const answer = await api.json(
          "POST",
          `/v1/webhooks/deliveries/${id}/redeliver`,
          WebhookDelivery,
        );
        s.out.result(answer);
        s.out.line(`redelivering as ${answer.id}`);
        return;
      }
      default:
        throw usageError(`unknown action ${JSON.stringify(action)}`, "see revq webhooks --help");
    }
  },
};

/** The edge checks the rest (no private addresses, ...); what is plainly no URL is usage. */
function checkEndpointUrl(text: string): void {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "http:" && url?.protocol !== "https:") {
    throw usageError(
      `${JSON.stringify(text)} is not an http(s) URL`,
      "give the endpoint's full URL, as https://example.com/hooks/revq",
    );
  }
}

function deliveryLine(d: WebhookDelivery): string {
  const last = d.attempts.at(-1);
  const outcome = last ? ` last: ${last.statusCode ?? last.error} at ${last.at}` : "";
  return `${d.id}  ${d.eventType.padEnd(18)} ${d.status.padEnd(9)} ${d.attempts.length} attempt${d.attempts.length === 1 ? "" : "s"}${outcome}  ${d.url}`;
}
