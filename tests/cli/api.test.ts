import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import * as z from "zod";
import { Api } from "../../cli/src/api.ts";

/**
 * A stand-in for the edge that rate-limits: the edge's own limiter takes a minute to reset
 * (tests/edge/rate-limits.test.ts covers its answers); this one says 429 a given number of
 * times, then answers.
 */
let server: Server | undefined;

async function limitingEdge(refusals: number, retryAfter: string) {
  const seen: { method: string; body: string }[] = [];
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      seen.push({ method: request.method ?? "", body });
      if (seen.length <= refusals) {
        response.writeHead(429, {
          "content-type": "application/problem+json",
          "retry-after": retryAfter,
        });
        response.end(JSON.stringify({ status: 429, code: "rate-limited", detail: "too many" }));
        return;
      }
      response.writeHead(201, { "content-type": "application/json" });
      response.end(JSON.stringify({ id: "job_1" }));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    api: new Api({ url: `http://127.0.0.1:${port}`, apiKey: "rvq_api_test", source: "test" }),
    seen,
  };
}

afterEach(() => {
  server?.close();
  server = undefined;
});

const Created = z.object({ id: z.string() });

describe("the CLI's API client, rate-limited", () => {
  it("sends a write again, unchanged, after the edge's Retry-After", async () => {
    const { api, seen } = await limitingEdge(2, "1");
    const start = performance.now();
    const created = await api.json("POST", "/v1/jobs", Created, { body: { kind: "encode" } });
    expect(created).toEqual({ id: "job_1" });
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((s) => s.body))).toEqual(new Set(['{"kind":"encode"}']));
    expect(performance.now() - start).toBeGreaterThanOrEqual(1900);
  });

  it("gives up after ten refusals with the edge's detail", async () => {
    const { api, seen } = await limitingEdge(100, "0");
    await expect(api.json("POST", "/v1/jobs", Created, { body: {} })).rejects.toThrow(
      "POST /v1/jobs: 429 too many",
    );
    expect(seen).toHaveLength(11);
  });
});
