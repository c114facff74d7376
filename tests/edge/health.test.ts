import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("service routes", () => {
  it("GET /healthz answers after a database round trip", async () => {
    const res = await exports.default.fetch("http://edge/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", database: "ok" });
  });

  it("an unknown route is a problem+json 404", async () => {
    const res = await exports.default.fetch("http://edge/v1/nothing-here");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(await res.json()).toMatchObject({
      type: "urn:revq:problem:route-not-found",
      status: 404,
      code: "route-not-found",
      instance: "/v1/nothing-here",
    });
  });
});
