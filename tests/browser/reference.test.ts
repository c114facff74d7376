/**
 * The API reference page (GET /v1/reference) in a real browser, served by wrangler dev: its
 * search box filters the operations as one types, an #operationId address opens that operation,
 * and schema names link to their definitions.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalEdge } from "../e2e/support/edge.ts";
import { launchChromium } from "./support/chromium.ts";

let edge: LocalEdge;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  edge = new LocalEdge();
  [browser] = await Promise.all([launchChromium(), edge.start()]);
  page = await browser.newPage();
  page.setDefaultTimeout(10_000);
});

afterAll(async () => {
  await browser?.close();
  await edge?.stop();
});

const visibleOperations = () =>
  page.locator("details.op:visible").evaluateAll((ops) => ops.map((op) => op.id));

describe("the API reference page", () => {
  it("filters the operations as one types, by path, summary, tag or operationId", async () => {
    await page.goto(`${edge.url}/v1/reference`);
    await page.locator("details.op").first().waitFor();
    const all = await visibleOperations();
    expect(all.length).toBeGreaterThan(40);
    expect(all).toContain("createJob");

    await page.locator("#search").pressSequentially("leasetasks");
    expect(await visibleOperations()).toEqual(["leaseTasks"]);
    await page.locator("#search").fill("get /v1/webhooks/{id}/deliveries");
    expect(await visibleOperations()).toEqual(["listWebhookDeliveries"]);
    await page.locator("#search").fill("admin tenants");
    expect(await visibleOperations()).toEqual([
      "createTenant",
      "createKey",
      "listKeys",
      "revokeKey",
    ]);
    await page.locator("#search").fill("");
    expect(await visibleOperations()).toEqual(all);
  });

  it("opens the operation its address names, with its example and links to its schemas", async () => {
    await page.goto(`${edge.url}/v1/reference#getJob`);
    const op = page.locator("details#getJob");
    await expect.poll(() => op.getAttribute("open")).not.toBeNull();
    expect(await op.textContent()).toContain('"id": "job_01m8d0fxvcpfrrd0dgccvp9czy"');
    const link = op.locator('a[href="#schema-Job"]').first();
    await link.click();
    expect(await page.locator("#schema-Job").isVisible()).toBe(true);
  });
});
