/**
 * The console's datasets, tokenizers and webhooks pages and an image's way through it, in a real
 * browser against the whole local stack (wrangler dev, the tiny tokenizer with a rectifier, a
 * revq-worker on wasm, a webhook receiver on loopback):
 *
 * - a dataset made on the page, an image dropped on it (a file that is no image left out, one
 *   the edge refuses said so and nothing added), its thumbnail, encoded as a job;
 * - that job's tokens and their reconstruction decoded in the browser (TensorFlow.js, with no
 *   GPU worker), then a reconstruct job whose PNG the browser's pixels must match;
 * - the tokenizer's page and a download of its manifest;
 * - a webhook endpoint added, its delivery's status code, and a redelivery.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { LocalEdge } from "../e2e/support/edge.ts";
import { buildTinyTokenizer, syntheticImage } from "../e2e/support/tiny-tokenizer.ts";
import { WorkerProcess } from "../e2e/support/worker-process.ts";
import { registerTokenizer, type Tenant } from "../e2e/support/world.ts";
import { launchChromium } from "./support/chromium.ts";
import { dropFiles } from "./support/drop.ts";

/**
 * How close the browser's pixels come to the worker's PNG of the same tokens: both run the same
 * model code (gpu-worker's, bundled for the browser) on the same wasm build of TensorFlow.js, the
 * worker's in Node and the browser's in chromium, and round to 8 bits the same way; the pixels
 * are identical (largest difference 0 of 255, PSNR infinite).
 */
const MAX_ABS_DIFF = 0;

let edge: LocalEdge;
let browser: Browser;
let page: Page;
let tenant: Tenant;
let worker: WorkerProcess;
let manifestHash: string;
let receiver: Server;
const received: { id: string; type: string }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    received.push({ id: String(req.headers["webhook-id"]), type: String(req.url) });
    req.resume();
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  await selectBackend("wasm");
  const built = await buildTinyTokenizer({ rectifier: "random" });
  manifestHash = built.hash;
  edge = new LocalEdge({ DEFAULT_TOKENIZER: built.hash, ALLOW_LOOPBACK_WEBHOOKS: "true" });
  [browser] = await Promise.all([launchChromium(), edge.start()]);
  await registerTokenizer(edge, built);
  tenant = await edge.tenant("pages");
  worker = new WorkerProcess(edge, { name: "pages-worker", workerKey: tenant.workerKey });
  page = await browser.newPage({ acceptDownloads: true });
  page.setDefaultTimeout(30_000);
  await page.goto(`${edge.url}/`);
  await page.fill("#api-key", tenant.apiKey);
  await page.click("button[type=submit]");
  await page.locator("table.jobs, .empty").first().waitFor();
});

afterAll(async () => {
  await worker?.stop();
  await browser?.close();
  await edge?.dispose();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
});

/** The job page the console went to, once its job has succeeded. */
async function succeededJob(): Promise<string> {
  await page.waitForURL(/#\/jobs\/job_/);
  const id = decodeURIComponent(new URL(page.url()).hash.split("/")[2]);
  await page.locator(".fields .status", { hasText: "succeeded" }).waitFor({ timeout: 60_000 });
  return id;
}

describe("the console's pages", () => {
  it("makes a dataset, takes dropped images (refusing what is not one), and encodes them", async () => {
    await page.getByRole("link", { name: "Datasets" }).click();
    await page.getByText("No datasets yet.").waitFor();
    await page.fill("#dataset-name", "dropped photos");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: "dropped photos" }).waitFor();
    await page.getByText("No images yet: drop some above.").waitFor();

    // A PNG that is not one: the edge refuses the whole request, and the dataset stays empty.
    await dropFiles(page, ".drop-zone", [
      { name: "broken.png", type: "image/png", bytes: new Uint8Array([137, 80, 78, 71, 1, 2, 3]) },
    ]);
    await page.getByRole("alert").filter({ hasText: "broken.png" }).waitFor();
    expect(await page.locator(".image-count").textContent()).toBe("0");

    await dropFiles(page, ".drop-zone", [
      { name: "photo.png", type: "image/png", bytes: await syntheticImage(21) },
      { name: "notes.txt", type: "text/plain", bytes: new TextEncoder().encode("not an image") },
    ]);
    await page.getByRole("alert").filter({ hasText: "Not images, left out: notes.txt" }).waitFor();
    await page.locator(".thumbs img").waitFor();
    await page.locator(".image-count", { hasText: "1" }).waitFor();
    // The edge lists the dataset's images: a fresh visit shows the one added before.
    await page.reload();
    await page.locator(".thumbs img").waitFor();

    await page.getByRole("button", { name: "Encode this image" }).click();
    await succeededJob();
  });

  it("shows the tokens and decodes them in the browser; a worker's PNG of them matches its pixels", async () => {
    // The encode job's page: its tokens read by the browser, and their image decoded there.
    await page
      .locator(".tokens", { hasText: "1 record of 128 tokens, each one of 64 codes" })
      .waitFor();
    expect((await page.locator(".token-ids").textContent())?.split(" ")).toHaveLength(24);
    await page.locator('.decode-status[data-decoded="1"]').waitFor({ timeout: 60_000 });
    expect(await page.locator(".decode-status").textContent()).toContain("WebAssembly");
    const row = page.locator(".reconstruction").first();
    await row.getByRole("img", { name: "original 0" }).waitFor();
    await row.getByRole("img", { name: "browser reconstruction 0" }).waitFor();
    expect(await row.locator(".psnr").textContent()).toMatch(/PSNR \d+\.\d\d dB/);

    await page.getByRole("button", { name: "Reconstruct on a worker" }).click();
    await succeededJob();
    // It kept the latents the PNGs were decoded from, to download.
    await page.getByRole("button", { name: "Download the latents (.npy)" }).waitFor();
    await page.locator('.decode-status[data-decoded="1"]').waitFor({ timeout: 60_000 });
    const match = page.locator(".reconstruction .match");
    await match.waitFor();
    const maxAbsDiff = Number(await match.getAttribute("data-max-abs-diff"));
    const psnr = Number(await match.getAttribute("data-psnr"));
    expect(maxAbsDiff).toBe(MAX_ABS_DIFF);
    expect(psnr).toBe(Number.POSITIVE_INFINITY);
    expect(await page.locator(".reconstruction .psnr").count()).toBe(2);
  });

  it("lists the tokenizer, shows its files and downloads its manifest", async () => {
    await page.getByRole("link", { name: "Tokenizers" }).click();
    const row = page.locator("table.list tbody tr").first();
    await row.waitFor();
    expect(await row.textContent()).toContain("128 tokens × 64 codes");
    await row.getByRole("link").click();
    await page.getByText("No evaluation: this tokenizer was registered without one.").waitFor();
    for (const path of [
      "manifest.json",
      "vae.safetensors",
      "codebook.safetensors",
      "rectifier.safetensors",
    ]) {
      await page.locator(`tr[data-file="${path}"]`).waitFor();
    }
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page
        .locator('tr[data-file="manifest.json"]')
        .getByRole("button", { name: "Download" })
        .click(),
    ]);
    const bytes = await readFile(await download.path());
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(manifestHash);
  });

  it("adds a webhook endpoint, shows its delivery's status code, and redelivers it", async () => {
    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.getByText("No endpoints.").waitFor();
    await page.fill("#webhook-url", "not a url");
    await page.getByRole("button", { name: "Add" }).click();
    await page
      .getByRole("alert")
      .filter({ hasText: /url.*\((400|422) / })
      .waitFor();

    const { port } = receiver.address() as { port: number };
    await page.fill("#webhook-url", `http://127.0.0.1:${port}/hooks`);
    await page.getByRole("button", { name: "Add" }).click();
    await page.locator(".secret", { hasText: "whsec_" }).waitFor();
    await page.locator("table.list a").click();
    await page.getByText("No deliveries yet").waitFor();

    const [image] = (
      await edge.api<{ images: { id: string }[] }>(
        "POST",
        "/v1/images",
        tenant.apiKey,
        await syntheticImage(22),
        {
          "content-type": "image/png",
        },
      )
    ).images;
    await edge.api("POST", "/v1/jobs", tenant.apiKey, {
      kind: "encode",
      inputs: { images: [image.id] },
    });
    const rows = page.locator("table.deliveries tbody tr");
    await rows.locator(".code-ok", { hasText: "204" }).waitFor({ timeout: 60_000 });
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain("job.succeeded");

    await rows.first().getByRole("button", { name: "Redeliver" }).click();
    await page.locator("table.deliveries tbody tr .code-ok").nth(1).waitFor();
    expect(await rows.count()).toBe(2);
    // The same message again: one webhook-id, received twice.
    expect(received).toHaveLength(2);
    expect(received[1].id).toBe(received[0].id);
  });
});
