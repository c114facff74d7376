/**
 * The worker's life: lease tasks from the edge (long-poll) while fewer than `tasksHeld` are held,
 * run each, keep its lease alive with a heartbeat timer, and end it with complete or fail.
 *
 * - A heartbeat goes out every third of the lease, carrying the task's latest progress. An answer
 *   that the job was cancelled, or that the lease is no longer ours (409/404), stops the task;
 *   it is then neither completed nor failed, since it is no longer ours to report on.
 * - A task's runner learns of a stop through its AbortSignal; the worker does not wait for a
 *   runner that is in the middle of a device call, it reports at once and drops the result.
 * - stop() (SIGTERM/SIGINT): no more leases; held tasks get the grace period to finish; what is
 *   still running then is released, so that another worker takes it at once (a release is not a
 *   failure: no backoff, no attempt used). A second stop() ends the grace period at once.
 */

import type { LeasedTask, Progress, TaskKind, TaskResult } from "@revq/shared";
import { backoffDelay, DEFAULT_BACKOFF, sleep } from "@revq/shared";
import { type EdgeClient, EdgeError, EdgeProtocolError } from "./client.ts";
import type { Logger } from "./log.ts";
import type { Bucket } from "./storage.ts";
import { TaskError } from "./task-error.ts";
import { TaskStopped } from "./tasks/errors.ts";

export type TaskOutcome = { result: TaskResult; metrics?: Record<string, number> };

export type TaskContext = {
  /** Aborted (with a TaskStopped reason) when the task must stop. */
  signal: AbortSignal;
  /** Records progress; the next heartbeat reports it. */
  progress(progress: Progress): void;
  /**
   * Reports a set of metrics (an epoch's losses, say) as a job event. Sets are sent in order,
   * one per heartbeat, starting at once; none is dropped while the lease lives.
   */
  metrics(values: Record<string, number>): void;
  /** The objects this task may read and write, and no others. */
  bucket: Bucket;
  log: Logger;
};

export type TaskRunner = (task: LeasedTask, context: TaskContext) => Promise<TaskOutcome>;

export type WorkerOptions = {
  client: EdgeClient;
  run: TaskRunner;
  /** The bucket as the task sees it (storage.ts, grantedBucket), for as long as it is held. */
  bucketFor: (task: LeasedTask, signal: AbortSignal) => Bucket;
  log: Logger;
  /** Recorded by the edge in job events. */
  name: string;
  kinds: TaskKind[];
  tasksHeld: number;
  leaseWaitSeconds: number;
  graceMs: number;
  /** How long complete and fail keep retrying while the edge is unreachable. */
  reportRetryMs?: number;
};

type Held = {
  task: LeasedTask;
  log: Logger;
  controller: AbortController;
  progress?: Progress;
  /** Metric sets not yet acknowledged by the edge, oldest first. */
  metrics: Record<string, number>[];
  leaseExpiresAt: number;
  beating: boolean;
};

/** The edge's answers that say a lease is no longer ours. */
const LOST = new Set(["lease-lost", "job-cancelled", "task-not-found"]);

export class Worker {
  private readonly options: WorkerOptions;
  private readonly log: Logger;
  private readonly held = new Map<string, Held>();
  private readonly leaseAbort = new AbortController();
  private readonly settled = new Set<Promise<void>>();
  private wakeLoop: (() => void) | undefined;
  private stopping = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(options: WorkerOptions) {
    this.options = options;
    this.log = options.log;
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** Leases and runs tasks until stop() has been called and every held task has ended. */
  async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const capacity = this.options.tasksHeld - this.held.size;
      if (capacity <= 0) {
        await new Promise<void>((resolve) => {
          this.wakeLoop = resolve;
        });
        continue;
      }
      try {
        const answer = await this.options.client.lease(
          {
            kinds: this.options.kinds,
            max: capacity,
            waitSeconds: this.options.leaseWaitSeconds,
            worker: this.options.name,
          },
          { signal: this.leaseAbort.signal },
        );
        failures = 0;
        for (const task of answer.tasks) this.start(task, answer.leaseSeconds);
      } catch (error) {
        if (this.stopping) break;
        if (error instanceof EdgeProtocolError || isFatal(error)) throw error;
        // The client retries transient errors itself; anything else is unexpected, so wait a
        // little rather than hammer the edge with a request it keeps refusing.
        const delay = backoffDelay(failures++, DEFAULT_BACKOFF);
        this.log.error("lease failed", { error, retryInMs: Math.round(delay) });
        await sleep(delay, this.leaseAbort.signal).catch(() => undefined);
      }
    }
    await Promise.all(this.settled);
    clearTimeout(this.graceTimer);
    this.log.info("stopped", { reason: "shutdown" });
  }

  /** Stops leasing and gives held tasks the grace period; a second call ends it at once. */
  stop(): void {
    if (this.stopping) {
      this.log.warn("stopping now: releasing held tasks", { held: this.held.size });
      this.endGrace();
      return;
    }
    this.stopping = true;
    this.log.info("stopping: no new leases", {
      held: this.held.size,
      graceSeconds: this.options.graceMs / 1000,
    });
    this.leaseAbort.abort(new TaskStopped("shutdown", "the worker is shutting down"));
    this.wakeLoop?.();
    if (this.held.size > 0)
      this.graceTimer = setTimeout(() => this.endGrace(), this.options.graceMs);
  }

  private endGrace(): void {
    clearTimeout(this.graceTimer);
    for (const held of this.held.values()) {
      held.controller.abort(
        new TaskStopped("shutdown", "the worker shut down before the task finished"),
      );
    }
  }

  private start(task: LeasedTask, leaseSeconds: number): void {
    const log = this.log.child({ taskId: task.taskId, jobId: task.jobId, kind: task.kind });
    const held: Held = {
      task,
      log,
      controller: new AbortController(),
      metrics: [],
      leaseExpiresAt: Date.parse(task.leaseExpiresAt),
      beating: false,
    };
    this.held.set(task.taskId, held);
    log.info("task leased", { attempt: task.attempt, maxAttempts: task.maxAttempts });
    const done = this.hold(held, leaseSeconds).finally(() => {
      this.held.delete(task.taskId);
      this.settled.delete(done);
      this.wakeLoop?.();
    });
    this.settled.add(done);
    if (this.stopping) held.controller.abort(new TaskStopped("shutdown", "leased while stopping"));
  }

  private async hold(held: Held, leaseSeconds: number): Promise<void> {
    const timer = setInterval(() => void this.beat(held), (leaseSeconds * 1000) / 3);
    try {
      const started = Date.now();
      const outcome = await untilAborted(
        this.options.run(held.task, {
          signal: held.controller.signal,
          progress: (progress) => {
            held.progress = progress;
          },
          metrics: (values) => {
            held.metrics.push(values);
            void this.beat(held);
          },
          bucket: this.options.bucketFor(held.task, held.controller.signal),
          log: held.log,
        }),
        held.controller.signal,
      );
      held.log.info("task finished", { seconds: (Date.now() - started) / 1000 });
      await this.complete(held, outcome);
    } catch (error) {
      await this.failed(held, error);
    } finally {
      clearInterval(timer);
    }
  }

  private async beat(held: Held): Promise<void> {
    if (held.beating || held.controller.signal.aborted) return;
    held.beating = true;
    let more = false;
    try {
      const metrics = held.metrics[0];
      const answer = await this.options.client.heartbeat(
        held.task.taskId,
        { leaseId: held.task.leaseId, progress: held.progress, metrics },
        { deadline: held.leaseExpiresAt, signal: held.controller.signal },
      );
      if (metrics) held.metrics.shift();
      more = held.metrics.length > 0;
      if (answer.cancelled) {
        held.controller.abort(new TaskStopped("cancelled", "the job was cancelled"));
      } else if (answer.leaseExpiresAt) {
        held.leaseExpiresAt = Date.parse(answer.leaseExpiresAt);
      }
    } catch (error) {
      if (held.controller.signal.aborted) return;
      if (error instanceof EdgeError && LOST.has(error.code)) {
        held.controller.abort(new TaskStopped("lease-lost", error.message));
      } else {
        // Unreachable until the lease's expiry: try again at the next beat; if the lease is
        // gone by then the edge says so (409) and the task stops.
        held.log.warn("heartbeat failed", { error });
      }
    } finally {
      held.beating = false;
    }
    // Queued metric sets go out back to back rather than one per heartbeat period.
    if (more) await this.beat(held);
  }

  private async complete(held: Held, outcome: TaskOutcome): Promise<void> {
    try {
      await this.options.client.complete(
        held.task.taskId,
        { leaseId: held.task.leaseId, result: outcome.result, metrics: outcome.metrics },
        { deadline: Date.now() + (this.options.reportRetryMs ?? 600_000) },
      );
      held.log.info("task completed");
    } catch (error) {
      if (error instanceof EdgeError && LOST.has(error.code)) {
        held.log.warn("task done but no longer ours: result dropped", { error });
      } else if (error instanceof EdgeError && error.status === 422) {
        // The edge found the outputs wrong: report it as a failure another attempt may fix.
        await this.report(held, new TaskError(error.code, error.message, true));
      } else {
        held.log.error("could not complete the task; its lease will expire", { error });
      }
    }
  }

  private async failed(held: Held, error: unknown): Promise<void> {
    // The edge may say the lease is gone on any call the task makes (its bucket URLs, say).
    if (!held.controller.signal.aborted && error instanceof EdgeError && LOST.has(error.code)) {
      const why = error.code === "job-cancelled" ? "cancelled" : "lease-lost";
      held.controller.abort(new TaskStopped(why, error.message));
    }
    const stopped = held.controller.signal.aborted ? held.controller.signal.reason : undefined;
    if (stopped instanceof TaskStopped && stopped.why !== "shutdown") {
      held.log.info("task stopped", { why: stopped.why, detail: stopped.message });
      return;
    }
    if (stopped instanceof TaskStopped) {
      await this.release(held, stopped);
    } else if (error instanceof TaskError) {
      await this.report(held, error);
    } else {
      held.log.error("task crashed", { error });
      const message = error instanceof Error ? error.message : String(error);
      await this.report(held, new TaskError("internal", message || "unknown error", true));
    }
  }

  /** Hands a task the worker shuts down on back to the edge, for another worker at once. */
  private async release(held: Held, stopped: TaskStopped): Promise<void> {
    try {
      // Briefly: the lease expiring does the same, later.
      await this.options.client.release(
        held.task.taskId,
        { leaseId: held.task.leaseId },
        { deadline: Date.now() + 5_000 },
      );
      held.log.warn("task released", { detail: stopped.message });
    } catch (error) {
      if (error instanceof EdgeError && LOST.has(error.code)) return;
      held.log.error("could not release the task; its lease will expire", { error });
    }
  }

  private async report(held: Held, error: TaskError): Promise<void> {
    try {
      const answer = await this.options.client.fail(
        held.task.taskId,
        {
          leaseId: held.task.leaseId,
          retryable: error.retryable,
          error: {
            code: error.code,
            message: error.message.slice(0, 2000),
            ...(error.evaluation ? { evaluation: error.evaluation } : {}),
          },
        },
        // While shutting down only briefly: the lease expiring does the same, later.
        {
          deadline: Date.now() + (this.stopping ? 5_000 : (this.options.reportRetryMs ?? 600_000)),
        },
      );
      held.log.warn("task failed", {
        code: error.code,
        retryable: error.retryable,
        message: error.message,
        status: answer.status,
      });
    } catch (reportError) {
      if (reportError instanceof EdgeError && LOST.has(reportError.code)) return;
      held.log.error("could not report the failure; its lease will expire", {
        error: reportError,
      });
    }
  }
}

/** A key the edge no longer accepts: nothing this worker does can succeed. */
function isFatal(error: unknown): boolean {
  return error instanceof EdgeError && (error.status === 401 || error.status === 403);
}

/** `work`'s result, or the signal's reason as soon as it is aborted (work goes on unobserved). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
