/**
 * `npm start`: the whole revq stack on this machine. Applies the D1 migrations, starts the edge
 * under `wrangler dev` (local D1, R2 and its S3 door, Queues, cron), seeds a tenant, its API and
 * worker keys and the default tokenizer, starts one revq-worker, and prints how to use it. State
 * persists in the state directory (.revq/ by default); Ctrl-C stops everything it started.
 *
 * Exit codes: 0 after Ctrl-C (or SIGTERM), 1 when something failed to start or died, 2 on bad
 * options, 3 when another start already runs from the same state directory.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { manifestHash } from "@revq/shared";
import { Admin } from "./start/admin.ts";
import { banner } from "./start/banner.ts";
import {
  applyMigrations,
  ensureDevVars,
  portInUse,
  startWrangler,
  tickCron,
  waitHealthy,
} from "./start/edge.ts";
import { AlreadyRunning, StartLock } from "./start/lock.ts";
import { HELP, parseStartOptions, type StartOptions, UsageError } from "./start/options.ts";
import type { Group } from "./start/processes.ts";
import { ensureSeed, writeLocalEnv } from "./start/seed.ts";
import {
  type RegisteredTokenizer,
  readManifest,
  registerTokenizerFolder,
} from "./start/tokenizer-folder.ts";
import { startWorker, WORKER_GRACE_SECONDS, waitWorkerStarted } from "./start/worker.ts";

const say = (line: string) => process.stdout.write(`${line}\n`);

function options(): StartOptions {
  try {
    const parsed = parseStartOptions(process.argv.slice(2), process.env);
    if (parsed === "help") {
      process.stdout.write(HELP);
      process.exit(0);
    }
    return parsed;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`npm start: ${error.message}\n`);
    process.exit(2);
  }
}

const opts = options();
const url = `http://127.0.0.1:${opts.port}`;
const logDir = join(opts.stateDir, "logs");
mkdirSync(logDir, { recursive: true });

let lock: StartLock;
try {
  lock = StartLock.acquire(opts.stateDir, url);
} catch (error) {
  if (!(error instanceof AlreadyRunning)) throw error;
  process.stderr.write(`npm start: ${error.message}\n`);
  process.exit(3);
}

const groups: Group[] = [];
let stopping: Promise<never> | undefined;

/** Stops the worker first (it hands held tasks back to the edge), then the edge. */
function stopAll(exitCode: number): Promise<never> {
  stopping ??= (async (): Promise<never> => {
    const [edge, ...others] = groups;
    await Promise.all(others.map((g) => g.stop("SIGTERM", (WORKER_GRACE_SECONDS + 5) * 1000)));
    await edge?.stop("SIGTERM", 5000);
    lock.release();
    process.exit(exitCode);
  })();
  return stopping;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    const name = signal === "SIGINT" ? "Ctrl-C" : signal;
    if (stopping) {
      // Impatience: a second signal ends the worker's grace period and everything with it.
      say(`\n${name} again: stopping at once.`);
      for (const g of groups) g.kill();
      return;
    }
    say(`\n${name}: stopping the worker and the edge… (again to stop at once)`);
    void stopAll(0);
  });
}

async function fail(message: string): Promise<never> {
  process.stderr.write(`\nnpm start: ${message}\n`);
  return stopAll(1);
}

/** A process that ends on its own while we did not ask it to takes everything down. */
function watch(group: Group): void {
  void group.exited.then(async (exit) => {
    if (group.stopRequested) return;
    await fail(
      `${group.name} stopped unexpectedly (${exit.code ?? exit.signal}); its log (${group.logFile}) ends with:\n${group.tail()}`,
    );
  });
}

async function start(): Promise<void> {
  const devVars = ensureDevVars();
  if (devVars.created) say("Wrote .dev.vars with a new admin key (ADMIN_KEY) for the local edge.");
  if (await portInUse(opts.port)) {
    await fail(
      `port ${opts.port} is in use by another program. Stop it, or start on another port: npm start -- --port 8788`,
    );
  }

  say("Applying the D1 migrations…");
  const persistDir = join(opts.stateDir, "wrangler");
  await applyMigrations(persistDir, join(logDir, "migrations.log"));

  say(`Starting the edge (wrangler dev) on ${url}…`);
  // Train jobs that name no tokenizer train on the VAE of the one this start registers. Passed
  // per run rather than kept in .dev.vars, so that it follows --tokenizer / REVQ_TOKENIZER_DIR.
  const vars: Record<string, string> = existsSync(opts.tokenizerDir)
    ? { DEFAULT_TOKENIZER: await manifestHash(readManifest(opts.tokenizerDir)) }
    : {};
  const edge = startWrangler(opts.port, persistDir, join(logDir, "edge.log"), vars);
  groups.push(edge);
  lock.addGroup("edge", edge.pgid);
  watch(edge);
  await waitHealthy(url, edge, 90_000);
  tickCron(url);

  const admin = new Admin(url, devVars.adminKey);
  const { seed, created } = await ensureSeed(admin, opts.stateDir);
  say(
    created ? "Created the local tenant and its keys." : "Reusing the local tenant and its keys.",
  );
  let tokenizer: RegisteredTokenizer | undefined;
  if (existsSync(opts.tokenizerDir)) {
    say(`Registering the tokenizer in ${opts.tokenizerDir}…`);
    tokenizer = await registerTokenizerFolder(admin, opts.tokenizerDir);
  }
  const localEnv = writeLocalEnv(opts.stateDir, url, seed);

  say(`Starting revq-worker (backend ${opts.backend})…`);
  const worker = startWorker({
    url,
    workerKey: seed.workerKey,
    backend: opts.backend,
    stateDir: opts.stateDir,
    logFile: join(logDir, "worker.log"),
  });
  groups.push(worker);
  lock.addGroup("worker", worker.pgid);
  watch(worker);
  const workerStart = await waitWorkerStarted(worker, 120_000);

  say(
    banner({
      url,
      seed,
      tokenizer,
      tokenizerDir: opts.tokenizerDir,
      worker: workerStart,
      localEnv,
      logDir,
    }),
  );
}

try {
  await start();
} catch (error) {
  await fail((error as Error).message);
}
