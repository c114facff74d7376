/**
 * Which URLs the edge may send webhooks to. Targets on private, loopback, link-local and other
 * non-public addresses are refused (SSRF), except loopback when local development allows it.
 * Checked when a URL is registered and again before every attempt. A Worker cannot resolve DNS
 * itself, so names are judged by their form (localhost and the special-use suffixes); the
 * Workers runtime in production does not connect to private addresses either.
 */
import { HttpProblem } from "../problem.ts";

const LOOPBACK_NAMES = /^(localhost|.*\.localhost)$/i;
const INTERNAL_NAMES = /(\.local|\.internal|\.lan|\.home\.arpa|\.intranet|\.corp)$/i;

function ipv4(host: string): number[] | undefined {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return undefined;
  const bytes = parts.map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

/** Why an IPv4 address is not a public one, if it is not. */
function ipv4Problem([a, b]: number[]): "loopback" | "private" | undefined {
  if (a === 127) return "loopback";
  const special =
    a === 0 ||
    a === 10 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224;
  return special ? "private" : undefined;
}

/**
 * Expands an IPv6 literal (no brackets) to 8 groups, or undefined if it is not one. Hosts come
 * from the URL parser, which writes IPv6 in hex only (an embedded IPv4 becomes two groups).
 */
function ipv6Groups(host: string): number[] | undefined {
  if (!host.includes(":")) return undefined;
  const [head, rest] = host.split("::");
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const first = parse(head);
  const last = rest === undefined ? [] : parse(rest);
  const zeros = rest === undefined ? 0 : 8 - first.length - last.length;
  const groups = [...first, ...Array(Math.max(zeros, 0)).fill(0), ...last];
  const valid =
    groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff);
  return valid ? groups : undefined;
}

function ipv6Problem(groups: number[]): "loopback" | "private" | undefined {
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return "loopback";
  if (groups.every((g) => g === 0)) return "private";
  // IPv4-mapped and IPv4-compatible: judge the IPv4 address inside.
  if (groups.slice(0, 5).every((g) => g === 0) && (groups[5] === 0xffff || groups[5] === 0)) {
    return ipv4Problem([groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff]);
  }
  const top = groups[0];
  if ((top & 0xfe00) === 0xfc00 || (top & 0xffc0) === 0xfe80 || (top & 0xff00) === 0xff00)
    return "private";
  return undefined;
}

/** Why this host is not a public target: "loopback", "private", or undefined if it is public. */
export function hostProblem(hostname: string): "loopback" | "private" | undefined {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (LOOPBACK_NAMES.test(host)) return "loopback";
  if (INTERNAL_NAMES.test(host) || (!host.includes(".") && !host.includes(":"))) return "private";
  const v4 = ipv4(host);
  if (v4) return ipv4Problem(v4);
  const v6 = ipv6Groups(host);
  if (v6) return ipv6Problem(v6);
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
