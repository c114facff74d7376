import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findLocalEnv, parseDotenv, resolveConnection } from "../../cli/src/config.ts";
import { CliError, EXIT } from "../../cli/src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "revq-cli-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(run: () => unknown): CliError {
  try {
    run();
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error("did not fail");
}

describe("the connection", () => {
  it("parses dotenv lines: comments, export, quotes", () => {
    expect(
      parseDotenv(
        "# local\nREVQ_URL=http://127.0.0.1:8787\nexport REVQ_API_KEY='rvq_api_x'\n\nbad line\n",
      ),
    ).toEqual({ REVQ_URL: "http://127.0.0.1:8787", REVQ_API_KEY: "rvq_api_x" });
  });

  it("finds .revq/local.env in the folder or above, as npm start writes it", () => {
    const project = join(dir, "project");
    mkdirSync(join(project, ".revq"), { recursive: true });
    mkdirSync(join(project, "a", "b"), { recursive: true });
    writeFileSync(
      join(project, ".revq", "local.env"),
      "REVQ_URL=http://127.0.0.1:9999/\nREVQ_API_KEY=rvq_api_local\n",
    );
    expect(findLocalEnv(join(project, "a", "b"))).toBe(join(project, ".revq", "local.env"));
    expect(resolveConnection({}, join(project, "a"))).toEqual({
      url: "http://127.0.0.1:9999",
      apiKey: "rvq_api_local",
      source: join(project, ".revq", "local.env"),
    });
    // The environment wins over the file, --url over both.
    const env = { REVQ_URL: "https://edge.example.com", REVQ_API_KEY: "rvq_api_env" };
    expect(resolveConnection(env, project)).toMatchObject({
      url: "https://edge.example.com",
      apiKey: "rvq_api_env",
    });
    expect(resolveConnection(env, project, "http://127.0.0.1:1")).toMatchObject({
      url: "http://127.0.0.1:1",
      apiKey: "rvq_api_env",
      source: "--url",
    });
  });

  it("says what to do when there is no URL or key, and refuses a URL that is none", () => {
    const none = failure(() => resolveConnection({}, join(dir, "nowhere")));
    expect(none.exitCode).toBe(EXIT.auth);
    expect(none.message).toBe("no edge URL: --url or REVQ_URL is not set");
    expect(none.hint).toMatch(/npm start/);
    const noKey = failure(() => resolveConnection({ REVQ_URL: "http://x" }, join(dir, "nowhere")));
    expect([noKey.exitCode, noKey.message]).toEqual([
      EXIT.auth,
      "no API key: REVQ_API_KEY is not set",
    ]);
    const bad = failure(() =>
      resolveConnection({ REVQ_URL: "ftp://x", REVQ_API_KEY: "k" }, join(dir, "nowhere")),
    );
    expect([bad.exitCode, bad.message]).toEqual([
      EXIT.usage,
      "the edge URL must be http(s), not ftp:",
    ]);
    // The API's prefix is the CLI's to add: said plainly, not as a 404 from /v1/v1/.
    const v1 = failure(() =>
      resolveConnection({ REVQ_URL: "http://127.0.0.1:8787/v1/", REVQ_API_KEY: "k" }, dir),
    );
    expect([v1.exitCode, v1.message, v1.hint]).toEqual([
      EXIT.usage,
      `REVQ_URL should be the edge's base URL, without /v1: "http://127.0.0.1:8787/v1/"`,
      "use http://127.0.0.1:8787",
    ]);
    expect(
      failure(() => resolveConnection({ REVQ_API_KEY: "k" }, dir, "https://e.example/v1")).message,
    ).toMatch(/^--url should be the edge's base URL, without \/v1/);
  });
});
