/**
 * The processes `npm start` runs, each in a process group of its own (detached), so that stopping
 * one stops everything it spawned (wrangler runs workerd under it), and a Ctrl-C in the terminal
 * reaches only `npm start`, which then stops them in order: the worker first, so that it can hand
 * its tasks back while the edge still answers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export class Group {
  readonly name: string;
  readonly logFile: string;
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private stopping = false;

  constructor(
    name: string,
    command: string,
    args: string[],
    options: { cwd: string; env: NodeJS.ProcessEnv; logFile: string },
  ) {
    this.name = name;
    this.logFile = options.logFile;
    // One log per start: the file is the story of this run only.
    const log = openSync(options.logFile, "w");
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", log, log],
    });
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    // A failed spawn (no such program) reports through "error", and "exit" may never come.
    this.child.once("error", () => undefined);
  }

  /** The process group id: the child's pid, as it leads its own group. */
  get pgid(): number {
    return this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.pgid > 0;
  }

  /** Whether stop() was called: its exit is then expected, not a failure. */
  get stopRequested(): boolean {
    return this.stopping;
  }

  /**
   * Sends `signal` to the whole group and waits for the leader to exit, then makes sure nothing
   * of the group is left: after `killAfterMs`, or once the leader is gone, SIGKILL the rest.
   */
  async stop(signal: NodeJS.Signals, killAfterMs: number): Promise<void> {
    this.stopping = true;
    if (this.pgid === 0) return;
    signalGroup(this.pgid, signal);
    const timer = setTimeout(() => signalGroup(this.pgid, "SIGKILL"), killAfterMs);
    await this.exited;
    clearTimeout(timer);
    // Children that outlive their leader (workerd after wrangler, say) go too.
    signalGroup(this.pgid, "SIGKILL");
  }

  /** SIGKILL to the whole group: nothing of it gets to clean up. */
  kill(): void {
    this.stopping = true;
    if (this.pgid > 0) signalGroup(this.pgid, "SIGKILL");
  }

  /** The last lines of its log, to show when it failed. */
  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}
