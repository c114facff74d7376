/**
 * Screenshots of every console page into docs/console/*.png, as a newcomer sees them: a local
 * stack of its own (wrangler dev on a temporary state, the repository's default tokenizer, one
 * revq-worker on wasm, a webhook receiver on loopback), a tenant with a few photos encoded,
 * reconstructed and trained on for a few epochs, and Debian's chromium (the browser tests' own)
 * walking through the pages.
 *
 *   node scripts/console-screenshots.ts [--out docs/console]
 *
 * Takes a minute or two. Nothing here is a test: tests/browser checks the same pages.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { canonicalJson, manifestHash } from "@revq/shared";
import sharp from "sharp";
import { launchChromium } from "../tests/browser/support/chromium.ts";
import { LocalEdge, ROOT } from "../tests/e2e/support/edge.ts";
import { WorkerProcess } from "../tests/e2e/support/worker-process.ts";
import { createJob, registerTokenizer, upload, waitForJob } from "../tests/e2e/support/world.ts";
import { readManifest } from "./start/tokenizer-folder.ts";

const { values } = parseArgs({ options: { out: { type: "string", default: "docs/console" } } });
const OUT = resolve(ROOT, values.out as string);
const TOKENIZER_DIR = join(ROOT, "models", "default-tokenizer");
const say = (line: string) => process.stdout.write(`${line}\n`);
/** A job to its end, however busy this machine is (a training takes a minute when idle). */
const FINISHED = (job: { status: string }) =>
  ["succeeded", "failed", "cancelled"].includes(job.status);
const JOB_MS = 10 * 60_000;

/**
 * The photos: the CLI's test cat, and the default VAE's nine held-out crops (a strip of 64×64
 * tiles), each also mirrored: enough for a training to hold some out and evaluate on them.
 */
async function photos(): Promise<Uint8Array[]> {
  const cat = new Uint8Array(readFileSync(join(ROOT, "tests/cli/fixtures/chelsea.jpg")));
  const strip = join(ROOT, "models/default-vae/heldout-crops.png");
  const { width = 0, height = 0 } = await sharp(strip).metadata();
  const tiles = Array.from({ length: Math.floor(width / height) }, (_, i) =>
    sharp(strip).extract({ left: i * height, top: 0, width: height, height }),
  );
  const pngs = await Promise.all(
    [...tiles.map((t) => t.clone()), ...tiles.map((t) => t.clone().flop())].map(
      async (t) => new Uint8Array(await t.png().toBuffer()),
    ),
  );
  return [cat, ...pngs];
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const manifest = readManifest(TOKENIZER_DIR);
  const hash = await manifestHash(manifest);
  const files = new Map(
    [manifest.files.stats, manifest.files.codebook, manifest.files.rectifier, manifest.vae.weights]
      .filter((f) => f !== undefined)
      .map((f) => [f.path, new Uint8Array(readFileSync(join(TOKENIZER_DIR, f.path)))]),
  );
  const received: string[] = [];
  const receiver = createServer((req, res) => {
    received.push(String(req.headers["webhook-id"]));
    req.resume();
    res.writeHead(received.length === 1 ? 503 : 204).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const { port } = receiver.address() as { port: number };

  const edge = new LocalEdge({ DEFAULT_TOKENIZER: hash, ALLOW_LOOPBACK_WEBHOOKS: "true" });
  say("starting the local stack…");
  const [browser] = await Promise.all([launchChromium(), edge.start()]);
  let worker: WorkerProcess | undefined;
  try {
    await registerTokenizer(edge, {
      manifest,
      manifestBytes: new TextEncoder().encode(canonicalJson(manifest)),
      hash,
      files,
    });
    const tenant = await edge.tenant("studio");
    worker = new WorkerProcess(edge, { name: "screenshots-worker", workerKey: tenant.workerKey });
    await edge.api("POST", "/v1/webhooks", tenant.apiKey, {
      url: `http://127.0.0.1:${port}/hooks`,
    });

    say("encoding, reconstructing and training…");
    const images = await upload(
      edge,
      tenant,
      (await photos()).map((bytes, i) => ({
        bytes,
        format: i === 0 ? ("jpeg" as const) : ("png" as const),
      })),
    );
    const encode = await createJob(edge, tenant, {
      kind: "encode",
      inputs: { images: images.slice(0, 4) },
    });
    await waitForJob(edge, tenant, encode.id, FINISHED, JOB_MS);
    const reconstruct = await createJob(edge, tenant, {
      kind: "reconstruct",
      inputs: { job: encode.id },
    });
    await waitForJob(edge, tenant, reconstruct.id, FINISHED, JOB_MS);
    const train = await createJob(edge, tenant, {
      kind: "train",
      inputs: { images },
      parameters: { name: "studio-photos", codes: 256, batchSize: 2, epochs: 4, seed: 1 },
    });
    await waitForJob(edge, tenant, train.id, FINISHED, JOB_MS);

    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.setDefaultTimeout(60_000);
    const shot = async (name: string) => {
      await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
      say(`  ${join(OUT, `${name}.png`)}`);
    };
    await page.goto(`${edge.url}/`);
    await page.locator("#api-key").waitFor();
    await shot("sign-in");
    await page.fill("#api-key", tenant.apiKey);
    await page.click("button[type=submit]");
    await page.locator("table.jobs").waitFor();
    await shot("jobs");

    await page.goto(`${edge.url}/#/jobs/${encode.id}`);
    await page.locator(".decode-status[data-decoded]").waitFor();
    await shot("encode-job");
    await page.goto(`${edge.url}/#/jobs/${reconstruct.id}`);
    await page.locator(".decode-status[data-decoded]").waitFor();
    await page.locator(".reconstruction .match").first().waitFor();
    await shot("reconstruct-job");
    await page.goto(`${edge.url}/#/jobs/${train.id}`);
    await page.locator(".chart canvas").first().waitFor();
    await shot("train-job");

    await page.goto(`${edge.url}/#/datasets`);
    await page.fill("#dataset-name", "studio photos");
    await page.getByRole("button", { name: "Create" }).click();
    const tiles = (await photos()).slice(1, 7).map((bytes, i) => ({
      name: `tile-${i}.png`,
      mimeType: "image/png",
      buffer: Buffer.from(bytes),
    }));
    await page.locator(".drop-zone input[type=file]").setInputFiles(tiles);
    await page.locator(".thumbs img").nth(5).waitFor();
    await shot("dataset");
    await page.goto(`${edge.url}/#/datasets`);
    await page.locator("table.list").waitFor();
    await shot("datasets");

    await page.goto(`${edge.url}/#/tokenizers`);
    await page.locator("table.list").waitFor();
    await shot("tokenizers");
    await page.locator("table.list a", { hasText: "studio-photos" }).click();
    await page.locator(".evaluation").waitFor();
    await shot("tokenizer");

    await page.goto(`${edge.url}/#/webhooks`);
    await page.locator("table.list a").click();
    const first = page.locator("table.deliveries tbody tr").last();
    await first.locator(".code-bad").waitFor();
    await shot("webhooks");

    await page.goto(`${edge.url}/v1/reference`);
    await page.locator("#search").waitFor();
    await shot("reference");
  } finally {
    await worker?.stop();
    await browser.close();
    await edge.dispose();
    receiver.close();
  }
}

await main();
