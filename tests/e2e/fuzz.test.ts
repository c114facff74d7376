/**
 * The short version of `npm run fuzz`'s HTTP half (bench/lib/fuzz/http.ts): mutated bodies for
 * decode, image uploads, jobs, dataset adds and the worker API, against wrangler dev. Whatever the
 * bytes, the edge answers with a 4xx problem or a success, never a 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fuzzHttp } from "../../bench/lib/fuzz/http.ts";
import { images, tarArchives } from "../../bench/lib/fuzz/seeds.ts";
import { LocalEdge } from "./support/edge.ts";

/** 30 per route: some seconds of requests on a 2-core runner. */
const REQUESTS = 390;

describe("the HTTP routes under mutated bodies", () => {
  const edge = new LocalEdge();
  beforeAll(() => edge.start());
  afterAll(() => edge.dispose());

  it("never answer 5xx", async () => {
    const seeds = { images: await images(), tars: await tarArchives() };
    const routes = await fuzzHttp(edge, seeds, { requests: REQUESTS, seed: 15 });
    expect(routes.flatMap((r) => r.failures)).toEqual([]);
    expect(routes.reduce((n, r) => n + r.serverErrors, 0)).toBe(0);
    expect(routes.reduce((n, r) => n + r.requests, 0)).toBe(REQUESTS);
    for (const route of routes) {
      // Every route was reached and refused bad bodies itself (not only auth or rate limits).
      const statuses = Object.keys(route.statuses).map(Number);
      expect(
        statuses.some((s) => s >= 400 && s !== 401 && s !== 403 && s !== 429),
        route.route,
      ).toBe(true);
    }
    const succeeded = routes.filter((r) => Object.keys(r.statuses).some((s) => s.startsWith("2")));
    expect(succeeded.length).toBeGreaterThan(routes.length / 2);
  });
});
