/**
 * Which URLs the edge may send webhooks to. Targets on private, loopback, link-local and other
 * non-public addresses are refused (SSRF), except loopback when local development allows it.
 * Checked when a URL is registered and again before every attempt. Address literals are judged by
 * ipaddr.js's range classification (only its "unicast" passes); a Worker cannot resolve DNS
 * itself, so names are judged by their form (localhost and the special-use suffixes). What that
 * leaves open, and what the platform closes, is in docs/security.md.
 */
import ipaddr from "ipaddr.js";
import { HttpProblem } from "../../problem.ts";

/** Names that are, or never leave, the local machine or network (RFC 6761, RFC 8375, habit). */
const LOOPBACK_SUFFIXES = ["localhost"];
const INTERNAL_SUFFIXES = ["local", "internal", "lan", "home.arpa", "intranet", "corp"];

/** IANA allocates global unicast IPv6 from 2000::/3 only; ipaddr.js calls all of ::/8 unicast. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR("2000::/3");

type HostProblem = "loopback" | "private" | undefined;

function underAny(host: string, suffixes: string[]): boolean {
  return suffixes.some((s) => host === s || host.endsWith(`.${s}`));
}

function addressProblem(address: ipaddr.IPv4 | ipaddr.IPv6): HostProblem {
  // An IPv4-mapped address reaches the IPv4 address inside it.
  if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress()) {
    return addressProblem(address.toIPv4Address());
  }
  const range = address.range();
  if (range === "loopback") return "loopback";
  const global = address instanceof ipaddr.IPv4 || address.match(GLOBAL_UNICAST_V6);
  return range === "unicast" && global ? undefined : "private";
}

/** Why this host is not a public target: "loopback", "private", or undefined if it is public. */
export function hostProblem(hostname: string): HostProblem {
  // `localhost.` is `localhost`: the trailing dot only marks a name as fully qualified.
  const host = hostname
    .replace(/^\[|\]$/g, "")
    .toLowerCase()
    .replace(/\.+$/, "");
  if (ipaddr.IPv4.isValidFourPartDecimal(host) || ipaddr.IPv6.isValid(host)) {
    return addressProblem(ipaddr.parse(host));
  }
  if (underAny(host, LOOPBACK_SUFFIXES)) return "loopback";
  if (underAny(host, INTERNAL_SUFFIXES) || !host.includes(".")) return "private";
  return undefined;
}

/** Throws a 422 naming the problem unless `url` is a webhook target the edge may call. */
export function checkWebhookTarget(url: string, allowLoopback: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpProblem(422, "webhook-target-forbidden", `${JSON.stringify(url)} is not a URL.`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new HttpProblem(
      422,
      "webhook-target-forbidden",
      `Webhook URLs must be http or https, not ${parsed.protocol}`,
    );
  }
  if (parsed.username || parsed.password) {
    throw new HttpProblem(
      422,
      "webhook-target-forbidden",
      "Webhook URLs may not carry credentials.",
    );
  }
  const problem = hostProblem(parsed.hostname);
  if (problem === "private" || (problem === "loopback" && !allowLoopback)) {
    throw new HttpProblem(
      422,
      "webhook-target-forbidden",
      `${parsed.hostname} is a ${problem} address; webhooks go only to public hosts.`,
    );
  }
  return parsed;
}
