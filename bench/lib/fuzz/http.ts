/**
 * The HTTP fuzz: mutated bodies sent to a running edge, spread over routes and tenants (so that
 * the per-tenant rate limits refuse few of them), a few at a time. Any 5xx is a bug: the edge
 * must answer a bad body with a 4xx problem, whatever the bytes.
 */
import { Rng } from "../../../shared/src/quant/rng.ts";
import { type HttpSeeds, type RouteCase, routeCases } from "./http-routes.ts";
import { type Edge, setUpWorld } from "./http-setup.ts";

export type RouteFigures = {
  route: string;
  requests: number;
  /** Answers by status code. */
  statuses: Record<string, number>;
  serverErrors: number;
  slowest: { ms: number; bytes: number; status: number };
  /** The first few 5xx answers, with the request that got each. */
  failures: { status: number; path: string; contentType: string; answer: string; body: string }[];
};

const KEPT_FAILURES = 10;
/** Requests in flight at once: enough to keep wrangler dev busy on a 2-core runner. */
const CONCURRENCY = 4;
/**
 * Requests per tenant. The tightest limit is 120 a minute per tenant (jobs, dataset uploads),
 * and 3 of the 13 routes count against the dataset one, so 250 a tenant (58 of those) stay under it even
 * within one minute.
 */
const REQUESTS_PER_TENANT = 250;

function emptyFigures(route: string): RouteFigures {
  return {
    route,
    requests: 0,
    statuses: {},
    serverErrors: 0,
    slowest: { ms: 0, bytes: 0, status: 0 },
    failures: [],
  };
}

export async function fuzzHttp(
  edge: Edge,
  seeds: HttpSeeds,
  options: { requests: number; seed: number },
): Promise<RouteFigures[]> {
  const tenants = Math.max(1, Math.ceil(options.requests / REQUESTS_PER_TENANT));
  const world = await setUpWorld(edge, tenants, seeds.images[0]);
  const cases = routeCases(world, seeds);
  const figures = new Map(cases.map((c) => [c, emptyFigures(c.name)]));
  const rng = new Rng(options.seed);
  // Route and tenant take turns, so every route sees every tenant and no window sees a burst.
  const schedule = Array.from({ length: options.requests }, (_, i) => ({
    routeCase: cases[i % cases.length],
    tenant: world.tenants[Math.floor(i / cases.length) % tenants],
  }));
  let next = 0;
  async function send(routeCase: RouteCase, tenant: (typeof world.tenants)[number]) {
    const request = routeCase.make(rng, tenant);
    const key = routeCase.key === "worker" ? tenant.workerKey : tenant.apiKey;
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (request.contentType) headers["content-type"] = request.contentType;
    const started = performance.now();
    const res = await fetch(`${edge.url}${request.path}`, {
      method: request.method,
      headers,
      body: request.body,
    });
    const answer = await res.text();
    const ms = performance.now() - started;
    const row = figures.get(routeCase) as RouteFigures;
    row.requests++;
    row.statuses[res.status] = (row.statuses[res.status] ?? 0) + 1;
    if (ms > row.slowest.ms) row.slowest = { ms, bytes: request.body.length, status: res.status };
    if (res.status >= 500) {
      row.serverErrors++;
      if (row.failures.length < KEPT_FAILURES) {
        row.failures.push({
          status: res.status,
          path: request.path,
          contentType: request.contentType,
          answer: answer.slice(0, 2000),
          body: Buffer.from(request.body.subarray(0, 4096)).toString("base64"),
        });
      }
    }
  }
  async function lane() {
    while (next < schedule.length) {
      const { routeCase, tenant } = schedule[next++];
      await send(routeCase, tenant);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  for (const row of figures.values()) row.slowest.ms = Math.round(row.slowest.ms * 10) / 10;
  return [...figures.values()];
}
