import { getRefId } from "@asteasolutions/zod-to-openapi";
import { describe, expect, it } from "vitest";
import type { ZodType } from "zod";
import { app } from "../../edge/src/app.ts";
import { call } from "./helpers.ts";

type Operation = {
  responses: Record<string, { headers?: Record<string, { example?: unknown }> }>;
  security?: unknown[];
  requestBody?: unknown;
  parameters?: { example?: unknown; schema?: { example?: unknown } }[];
};
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
};

describe("GET /v1/openapi.json", () => {
  it("documents every route from the schemas the routes validate with", async () => {
    const res = await call("/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Document;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/healthz",
        "/v1/admin/tenants",
        "/v1/admin/tenants/{tenantId}/keys",
        "/v1/images",
        "/v1/images/{id}",
        "/v1/images/{id}/content",
        "/v1/datasets",
        "/v1/datasets/{id}",
        "/v1/datasets/{id}/images",
        "/v1/tokenizers",
        "/v1/tokenizers/{id}",
        "/v1/tokenizers/{id}/manifest.json",
        "/v1/tokenizers/{id}/files/{path}",
        "/v1/admin/tokenizers",
        "/v1/admin/tokenizers/{id}/files/{path}",
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/{id}/events",
        "/v1/jobs/{id}/tokens",
        "/v1/jobs/{id}/images/{index}",
        "/v1/jobs/{id}/deliveries",
        "/v1/worker/lease",
        "/v1/worker/tasks/{id}/heartbeat",
        "/v1/worker/tasks/{id}/complete",
        "/v1/worker/tasks/{id}/fail",
        "/v1/worker/tasks/{id}/release",
        "/v1/decode",
        "/v1/webhooks",
        "/v1/webhooks/{id}",
        "/v1/webhooks/{id}/deliveries",
        "/v1/webhooks/deliveries/{id}/redeliver",
      ]),
    );
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
      "adminKey",
      "apiKey",
      "workerKey",
    ]);
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining([
        "Problem",
        "Image",
        "Job",
        "JobCreate",
        "Dataset",
        "DatasetImageIds",
        "DatasetImagesAdded",
        "Tokenizer",
        "WebhookDelivery",
      ]),
    );
    // The worker protocol is shared's zod, inlined: its lease body must still be described.
    const lease = doc.paths["/v1/worker/lease"].post.requestBody as {
      content: { "application/json": { schema: { properties: Record<string, unknown> } } };
    };
    expect(Object.keys(lease.content["application/json"].schema.properties)).toEqual(
      expect.arrayContaining(["kinds", "max", "waitSeconds"]),
    );
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        if (path.startsWith("/v1/")) expect(op.security, `${method} ${path}`).toBeDefined();
      }
    }
    const upload = doc.paths["/v1/images"].post.requestBody as { content: Record<string, unknown> };
    expect(Object.keys(upload.content).sort()).toEqual([
      "image/jpeg",
      "image/png",
      "image/webp",
      "multipart/form-data",
    ]);
    const add = doc.paths["/v1/datasets/{id}/images"].post.requestBody as {
      content: Record<string, unknown>;
    };
    expect(Object.keys(add.content).sort()).toEqual([
      "application/json",
      "application/x-tar",
      "multipart/form-data",
    ]);
  });
});

/** Every route's own definition, with its zod schemas, as registered (hand-routed ones too). */
const routes = app.openAPIRegistry.definitions.flatMap((d) =>
  d.type === "route" ? [d.route] : [],
);
const routeName = (route: { method: string; path: string }) => `${route.method} ${route.path}`;
type Media = { schema?: ZodType | { $ref: string }; example?: unknown };
const mediaOf = (content: unknown) => Object.entries((content ?? {}) as Record<string, Media>);

/** The zod schema of a body or answer: its own, or the registered one its `$ref` names. */
function zodOf(schema: Media["schema"]): ZodType {
  if (schema && "safeParse" in schema) return schema;
  const named = app.openAPIRegistry.definitions.find(
    (d) => d.type === "schema" && `#/components/schemas/${getRefId(d.schema)}` === schema?.$ref,
  );
  if (named?.type !== "schema") throw new Error(`no zod schema for ${JSON.stringify(schema)}`);
  return named.schema as ZodType;
}

describe("the operations", () => {
  it("each have a unique lowerCamelCase operationId", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as Document;
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => routeName({ method, path })),
    );
    expect(routes.map(routeName).sort()).toEqual(documented.sort());
    for (const route of routes) {
      expect(route.operationId, routeName(route)).toMatch(/^[a-z]+([A-Z][a-z]+)*$/);
    }
    const ids = routes.map((route) => route.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  /**
   * What "every operation has an example" means here: each JSON body and each JSON 2xx answer has
   * one, which its own zod schema accepts (so examples cannot drift from the schemas); and an
   * operation that sends and answers no JSON (a download of bytes, a delete) shows one on a
   * parameter or on a header of its answer, the bytes themselves being said in its description.
   */
  it("each have examples, which their own schemas accept", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as Document;
    for (const route of routes) {
      const name = routeName(route);
      const answers = Object.entries(route.responses).filter(([status]) => status.startsWith("2"));
      const media = [
        ...mediaOf(route.request?.body?.content),
        ...answers.flatMap(([, answer]) => mediaOf("content" in answer ? answer.content : {})),
      ].filter(([type]) => type === "application/json");
      for (const [, { schema, example }] of media) {
        expect(example, name).toBeDefined();
        expect(zodOf(schema).safeParse(example).error?.issues, name).toBeUndefined();
      }
      if (media.length > 0) continue;
      const op = doc.paths[route.path][route.method];
      const shown = [
        ...(op.parameters ?? []).map((p) => p.example ?? p.schema?.example),
        ...Object.entries(op.responses)
          .filter(([status]) => status.startsWith("2"))
          .flatMap(([, answer]) => Object.values(answer.headers ?? {}).map((h) => h.example)),
      ].filter((example) => example !== undefined);
      expect(shown.length, name).toBeGreaterThan(0);
    }
  });
});

describe("GET /v1/reference", () => {
  it("is a self-contained HTML page: nothing loaded from another origin", async () => {
    const res = await call("/v1/reference");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain("/v1/openapi.json");
    // The search box and the pointer to the concepts the page cannot serve (tests/browser's
    // reference.test.ts drives the search, the #operationId anchors and the schema links).
    expect(html).toMatch(/<input id="search" type="search"/);
    expect(html).toContain("<code>docs/api.md</code> of the revq repository");
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
  });
});
