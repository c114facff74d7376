#!/usr/bin/env node
/**
 * revq-worker: the GPU worker process. Reads its configuration (flags and environment, see
 * --help), starts a TensorFlow.js backend, says what it found, and leases tasks of every kind
 * from the edge until SIGTERM or SIGINT (a second signal stops at once).
 *
 * Exit codes: 0 after a clean stop, 1 on an unexpected error or a refused key, 2 on bad
 * configuration. worker.ts leases and reports; tasks/ runs each kind on pipeline/, train/,
 * models/ and ops/ (docs/architecture.md, "Where things live").
 */
import { join } from "node:path";
import { selectBackend } from "./backend.ts";
import { TokenizerCache } from "./cache.ts";
import { EdgeClient } from "./client.ts";
import { ConfigError, helpText, parseConfig, type WorkerConfig } from "./config.ts";
import { createLogger, defaultLogFormat, type Logger } from "./log.ts";
import { Batcher } from "./pipeline/batcher.ts";
import { TokenizerStore } from "./pipeline/tokenizer.ts";
import { grantedBucket } from "./storage.ts";
import { taskRunner, WORKER_KINDS } from "./tasks/index.ts";
import { Worker } from "./worker.ts";

function configure(): WorkerConfig {
  try {
    const config = parseConfig(process.argv.slice(2), process.env);
    if (config === "help") {
      process.stdout.write(helpText());
      process.exit(0);
    }
    return config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`revq-worker: ${error.message}\n`);
    process.exit(2);
  }
}

async function main(config: WorkerConfig, log: Logger): Promise<void> {
  const backend = await selectBackend(config.backend);
  const client = new EdgeClient({ baseUrl: config.edgeUrl, workerKey: config.workerKey, log });
  const cache = new TokenizerCache(join(config.cacheDir, "tokenizers"), log);
  const cached = await cache.list();
  log.info("revq-worker started", {
    name: config.name,
    backend: backend.backend,
    device: backend.attempts.find((a) => a.ok && a.backend === backend.backend)?.detail,
    accelerated: backend.accelerated,
    why: backend.reason,
    edge: config.edgeUrl,
    tasks: config.tasksHeld,
    batchSize: config.batchSize,
    cacheDir: config.cacheDir,
    modelsDir: config.modelsDir,
    tokenizersCached: cached.map((t) => `${t.name} ${t.manifestHash.slice(0, 12)}`),
  });
  const worker = new Worker({
    client,
    // The bucket through URLs the edge grants this task (the worker holds no bucket credential).
    bucketFor: (task, signal) =>
      grantedBucket(
        (objects) =>
          client.objects(
            task.taskId,
            { leaseId: task.leaseId, objects },
            { signal, deadline: Date.now() + 300_000 },
          ),
        { log, granted: task.objects },
      ),
    run: taskRunner({
      tokenizers: new TokenizerStore(cache, log, { modelsDir: config.modelsDir }),
      batcher: new Batcher(config.batchSize),
      batchSize: config.batchSize,
    }),
    log,
    name: config.name,
    kinds: WORKER_KINDS,
    tasksHeld: config.tasksHeld,
    leaseWaitSeconds: config.leaseWaitSeconds,
    graceMs: config.graceSeconds * 1000,
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      log.info("signal received", { signal });
      worker.stop();
    });
  }
  await worker.run();
}

const config = configure();
const log = createLogger({
  format: config.logFormat === "auto" ? defaultLogFormat() : config.logFormat,
  level: config.logLevel,
});
try {
  await main(config, log);
  // A backend may keep handles open (threads, device); the work is done.
  process.exit(0);
} catch (error) {
  log.error("revq-worker stopped on an error", { error });
  process.exit(1);
}
