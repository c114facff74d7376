/**
 * The console in a real browser against the whole local stack: wrangler dev serving the console
 * and the API (the build runs first, wrangler.toml [build]), the tiny tokenizer, a revq-worker on
 * wasm. Sign in (a refused key first), the jobs list following a job live and cancelling it, a
 * job followed to its end, a training's curves growing epoch by epoch and a real training's
 * curves, an edge that goes away, a key revoked while in use.
 *
 * The growing curves' epochs are reported by this test through the worker API, as a worker
 * would, so that the charts are seen to grow: a real training of the size a test affords ends
 * before the page has loaded. That test runs before the worker starts, which would take its task.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../gpu-worker/src/backend.ts";
import { LocalEdge } from "../e2e/support/edge.ts";
import { buildTinyTokenizer, syntheticImage } from "../e2e/support/tiny-tokenizer.ts";
import { WorkerProcess } from "../e2e/support/worker-process.ts";
import {
  createJob,
  registerTokenizer,
  type Tenant,
  upload,
  waitForJob,
} from "../e2e/support/world.ts";
import { launchChromium } from "./support/chromium.ts";

let edge: LocalEdge;
let browser: Browser;
let page: Page;
let tenant: Tenant;
let tokenizer: string;
let images: string[];
/** The revq-worker, from the test that starts it on. */
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  await selectBackend("wasm");
  const built = await buildTinyTokenizer();
  // As under npm start, the tokenizer is the default one: a train job need not name it.
  edge = new LocalEdge({ DEFAULT_TOKENIZER: built.hash });
  [browser] = await Promise.all([launchChromium(), edge.start()]);
  tokenizer = await registerTokenizer(edge, built);
  tenant = await edge.tenant("console");
  images = await upload(
    edge,
    tenant,
    await Promise.all(
      [1, 2, 3, 4].map(async (seed) => ({
        bytes: await syntheticImage(seed),
        format: "png" as const,
      })),
    ),
  );
  page = await browser.newPage();
  page.setDefaultTimeout(20_000);
});

afterAll(async () => {
  await worker?.stop();
  await browser?.close();
  await edge?.dispose();
});

const encodeJob = () =>
  createJob(edge, tenant, { kind: "encode", tokenizer, inputs: { images: images.slice(0, 1) } });

/** The worker API, as a worker calls it with the tenant's worker key. */
const asWorker = <T>(path: string, body: unknown) =>
  edge.api<T>("POST", `/v1/worker${path}`, tenant.workerKey, body);

describe("the console", () => {
  it("says a refused key plainly, signs in with an API key to an empty jobs page, says a job is not there", async () => {
    await page.goto(`${edge.url}/`);
    await page.fill("#api-key", "rvq_api_not-a-key");
    await page.click("button[type=submit]");
    await page.getByRole("alert").filter({ hasText: "The edge refused this key" }).waitFor();
    // A worker key is a real key, but not one a person signs in with.
    await page.fill("#api-key", tenant.workerKey);
    await page.click("button[type=submit]");
    await page.getByRole("alert").filter({ hasText: "a worker key cannot sign in" }).waitFor();

    await page.fill("#api-key", tenant.apiKey);
    await page.click("button[type=submit]");
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.getByText("No jobs yet.").waitFor();
    expect(await page.locator(".tenant").textContent()).toBe("console");
    // Kept in this tab's session storage, never in a cookie.
    expect(await page.evaluate(() => sessionStorage.getItem("revq.apiKey"))).toBe(tenant.apiKey);
    expect(await page.context().cookies()).toEqual([]);

    // A job that is not there is said so, not a blank page.
    await page.goto(`${edge.url}/#/jobs/job_nope`);
    await page.getByRole("alert").filter({ hasText: "No job job_nope." }).waitFor();
    await page.goto(`${edge.url}/#/jobs`);
  });

  it("lists a job as it is made, cancels it, and filters by status and kind", async () => {
    const job = await encodeJob();
    const row = page.locator(`tr[data-job="${job.id}"]`);
    await row.filter({ hasText: "queued" }).waitFor();
    await row.getByRole("button", { name: "Cancel" }).click();
    await row.filter({ hasText: "cancelled" }).waitFor();
    expect(await row.getByRole("button").count()).toBe(0);

    await page.selectOption("select[name=status]", "cancelled");
    await page.waitForURL(/#\/jobs\?status=cancelled$/);
    await row.waitFor();
    await page.selectOption("select[name=kind]", "train");
    await page.getByText("No cancelled train jobs.").waitFor();
    await page.selectOption("select[name=status]", "");
    await page.selectOption("select[name=kind]", "");
    await row.waitFor();
  });

  it("draws a training's curves and grows them as its epochs are reported", async () => {
    const job = await createJob(edge, tenant, {
      kind: "train",
      inputs: { images },
      parameters: { epochs: 3, batchSize: 1 },
    });
    await page.goto(`${edge.url}/#/jobs/${job.id}`);
    await page.getByText("No epoch has finished yet").waitFor();

    const { tasks } = await asWorker<{ tasks: { taskId: string; leaseId: string }[] }>("/lease", {
      kinds: ["train"],
      worker: "console-test",
      waitSeconds: 5,
    });
    expect(tasks).toHaveLength(1);
    const [{ taskId, leaseId }] = tasks;
    const epoch = (n: number) =>
      asWorker(`/tasks/${taskId}/heartbeat`, {
        leaseId,
        progress: { done: n, total: 3, stage: `epoch ${n}/3`, etaSeconds: 40 * (3 - n) },
        metrics: {
          epoch: n,
          lossQuantizer: 1 / n,
          lossRectifier: 0.5 / n,
          valLatentMse: 0.2 / n,
          valRectifiedMse: 0.1 / n,
          valPsnr: 20 + n,
          valSsim: 0.5 + n / 10,
          vaePsnr: 30,
          vaeSsim: 0.9,
          usageMean: 0.5 + n / 10,
          usageMin: 0.2 + n / 10,
        },
      });

    await epoch(1);
    await page.locator(".fields .progress", { hasText: "epoch 1/3 · about 80 s left" }).waitFor();
    await page.getByText("The held-out evaluation comes when the training ends.").waitFor();
    const charts = page.locator(".chart");
    await page.locator('.chart[data-chart="Training losses"][data-points="1"]').waitFor();
    expect(await charts.evaluateAll((all) => all.map((c) => c.getAttribute("data-chart")))).toEqual(
      ["Training losses", "Held-out latent MSE", "Held-out PSNR", "Held-out SSIM", "Code usage"],
    );
    // Each chart is a uPlot canvas with its series named in the legend.
    expect(await charts.locator("canvas").count()).toBe(5);
    await page.locator(".chart", { hasText: "after the rectifier" }).waitFor();

    await epoch(2);
    await page.locator('.chart[data-chart="Code usage"][data-points="2"]').waitFor();
    expect(await page.locator('.chart[data-points="2"]').count()).toBe(5);

    await page.locator(".actions").getByRole("button", { name: "Cancel" }).click();
    await page.locator(".fields .status", { hasText: "cancelled" }).waitFor();
    expect(await waitForJob(edge, tenant, job.id)).toMatchObject({ status: "cancelled" });
  });

  it("opens a job and follows it to its end, run by a revq-worker", async () => {
    worker = new WorkerProcess(edge, { name: "console-worker", workerKey: tenant.workerKey });
    const job = await encodeJob();
    await page.locator(".back a").click();
    await page.locator(`tr[data-job="${job.id}"] a`).click();
    await page.waitForURL(new RegExp(`#/jobs/${job.id}$`));
    await page.getByRole("heading", { name: `Job ${job.id}` }).waitFor();
    const status = page.locator(".fields .status");
    await status.filter({ hasText: "succeeded" }).waitFor({ timeout: 60_000 });
    const timeline = page.locator(".timeline");
    await timeline.locator(".event-status", { hasText: "running" }).waitFor();
    await timeline.locator(".event-status", { hasText: "succeeded" }).waitFor();
    expect(await timeline.locator(".event-status").first().textContent()).toContain("queued");
    await page.locator(".fields dt", { hasText: "result" }).waitFor();
  });

  it("charts a short real training, from the worker's own reports", async () => {
    const more = await upload(
      edge,
      tenant,
      await Promise.all(
        [5, 6, 7, 8, 9, 10, 11, 12].map(async (seed) => ({
          bytes: await syntheticImage(seed),
          format: "png" as const,
        })),
      ),
    );
    // 12 images: 1 held out, 11 to train on in 2 batches of 4, with a tiny rectifier (seconds).
    const job = await createJob(edge, tenant, {
      kind: "train",
      inputs: { images: [...images, ...more] },
      parameters: {
        name: "console-trained",
        tokens: 128,
        codes: 16,
        batchSize: 4,
        epochs: 2,
        seed: 1,
        rectifier: { channels: 16, blocks: 1, headDim: 8, multiscales: [5] },
      },
    });
    await page.goto(`${edge.url}/#/jobs/${job.id}`);
    await page.locator(".fields .status", { hasText: "succeeded" }).waitFor({ timeout: 60_000 });
    await page.locator('.chart[data-chart="Training losses"][data-points="2"]').waitFor();
    // Every figure the console charts is one the worker reports.
    expect(await page.locator('.chart[data-points="2"]').count()).toBe(5);
    // Then the held-out evaluation (one image of the twelve was held out).
    const evaluation = page.locator(".evaluation");
    await evaluation.locator("dt", { hasText: "latent MSE" }).waitFor();
    expect(await evaluation.textContent()).toContain("1 latent, 1 image decoded");
  });

  it("says so when the edge goes away, and carries on when it is back", async () => {
    await page.goto(`${edge.url}/#/jobs`);
    await page.locator("table.jobs").waitFor();
    // The network fails as it does for an edge that stopped: fetch rejects.
    await page.route("**/v1/**", (route) => route.abort("connectionrefused"));
    const away = page.getByRole("alert").filter({ hasText: "did not answer" });
    await away.waitFor();
    // What was on the page stays.
    expect(await page.locator("table.jobs tbody tr").count()).toBeGreaterThan(0);
    await page.unroute("**/v1/**");
    await away.waitFor({ state: "detached" });
  });

  it("goes back to the sign-in form, saying why, when the key is revoked", async () => {
    const keys = `/v1/admin/tenants/${tenant.tenantId}/keys`;
    const second = await edge.api<{ id: string; key: string }>("POST", keys, edge.adminKey, {
      kind: "api",
      name: "console-second",
    });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.fill("#api-key", second.key);
    await page.click("button[type=submit]");
    await page.locator("table.jobs").waitFor();

    await edge.api("DELETE", `${keys}/${second.id}`, edge.adminKey);
    await page.getByRole("alert").filter({ hasText: "The edge refused the key" }).waitFor();
    await page.locator("#api-key").waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("revq.apiKey"))).toBeNull();
  });
});
