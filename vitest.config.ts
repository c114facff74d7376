import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["tests/shared/**/*.test.ts", "tests/gpu-worker/**/*.test.ts"],
          testTimeout: 30_000,
          // Building the tiny tokenizer in a beforeAll took over 10 s on a loaded 2-core machine.
          hookTimeout: 60_000,
        },
      },
      {
        // The whole stack on loopback: wrangler dev (local D1, R2 + its S3 door, Queues) and real
        // revq-worker processes. One file at a time: each starts its own edge and workers.
        test: {
          name: "e2e",
          include: ["tests/e2e/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // The revq CLI: its pieces, then the real bin against wrangler dev and a revq-worker.
        // One file at a time, like e2e: a file may start its own edge and worker.
        test: {
          name: "cli",
          include: ["tests/cli/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // The console in a real browser (Debian's chromium, driven by playwright-core) against
        // the whole local stack, as e2e: one file at a time, each with its own edge.
        test: {
          name: "browser",
          include: ["tests/browser/**/*.test.ts"],
          testTimeout: 90_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // The edge runs inside workerd with real local D1, R2 and Queues (miniflare), configured
        // from wrangler.toml; tests/edge/setup.ts applies the migrations.
        plugins: [
          cloudflareTest(async ({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // Small limits, so that tests of them need only small bodies.
              bindings: {
                ADMIN_KEY: "test-admin-key",
                // One key, as a deployment has; webhooks.test.ts adds others to test rotation.
                WEBHOOK_KEYS: "test:ByToDeQmsUNTf/cLz6NtYpkYZFw2bceNa75mq3ioePY=",
                // Object URLs are only signed here, never fetched: any endpoint will do.
                S3_ENDPOINT: "https://s3.test",
                S3_ACCESS_KEY_ID: "test-access-key",
                S3_SECRET_ACCESS_KEY: "test-secret",
                MAX_IMAGE_BYTES: "65536",
                MAX_IMAGE_PIXELS: "1000000",
                MAX_UPLOAD_BYTES: "262144",
                MAX_IMAGES_PER_REQUEST: "4",
                // Codebook reads as scattered as possible, so decode tests exercise coalescing.
                DECODE_MERGE_GAP_BYTES: "0",
                DECODE_MAX_RANGE_READS: "5",
                MAX_DECODE_RECORDS: "8",
                // Datasets: a few images per request and per dataset, shards of 2 images and
                // extract jobs of 2 shards, so that a dataset of 9 images spans 5 shards.
                MAX_DATASET_ADD_IMAGES: "5",
                MAX_DATASET_IMAGES: "10",
                LATENT_SHARD_SIZE: "2",
                EXTRACT_TASK_SHARDS: "2",
                // The manifest hash of tests/edge/fixtures/jobs.ts's tokenizer (tinyTokenizer("jobs")),
                // which every test world registers; dataset-training.test.ts checks that it still is.
                DEFAULT_TOKENIZER:
                  "8cff65e1552a923a02a4a5e3a6a43c5e8a00b37611b67c210514de51258c6979",
                // Webhook tests deliver to a real server on loopback (tests/edge/global).
                ALLOW_LOOPBACK_WEBHOOKS: "true",
                WEBHOOK_RECEIVER: inject("webhookReceiver"),
                TEST_MIGRATIONS: await readD1Migrations("./migrations"),
              },
              // The route classes keep wrangler.toml's limits, which no other test reaches;
              // tests/edge/rate-limits.test.ts swaps this small one in for the class it tests.
              ratelimits: {
                TEST_RATE_LIMIT: { namespace_id: "9301", simple: { limit: 2, period: 10 } },
              },
            },
          })),
        ],
        test: {
          name: "edge",
          include: ["tests/edge/**/*.test.ts"],
          setupFiles: ["tests/edge/setup.ts"],
          globalSetup: ["tests/edge/global/webhook-receiver.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
