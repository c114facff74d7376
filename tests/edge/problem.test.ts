import { FormatError } from "@revq/shared";
import { describe, expect, it } from "vitest";
import { HttpProblem, problemResponse, toProblem } from "../../edge/src/problem.ts";

describe("problem+json", () => {
  it("maps a shared FormatError to 400 with its format and code", async () => {
    const problem = toProblem(new FormatError("token-stream", "bad-magic", "not RVQT"));
    expect(problem.status).toBe(400);
    const res = problemResponse(problem, "/v1/decode");
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(await res.json()).toEqual({
      type: "urn:revq:problem:token-stream.bad-magic",
      title: "Bad Request",
      status: 400,
      detail: "token-stream: not RVQT",
      instance: "/v1/decode",
      code: "token-stream.bad-magic",
    });
  });

  it("maps a tokenizer mismatch and an invalid manifest to 422", () => {
    expect(toProblem(new FormatError("manifest", "invalid", "x")).status).toBe(422);
    const error = new FormatError("token-stream", "bad-tokenizer-hash", "wrong tokenizer");
    expect(toProblem(error).status).toBe(422);
  });

  it("hides the details of an unexpected error behind a 500", () => {
    const problem = toProblem(new TypeError("secret internals"));
    expect(problem.status).toBe(500);
    expect(problem.message).not.toContain("secret");
  });

  it("keeps an HttpProblem's headers", () => {
    const res = problemResponse(
      new HttpProblem(401, "missing-key", "no key", { headers: { "www-authenticate": "Bearer" } }),
    );
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
  });
});
