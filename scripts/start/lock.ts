/**
 * One `npm start` per state directory. The lock file holds the owner's pid, its URL and the
 * process groups it started; a second start finds a live owner there and says so. A lock whose
 * owner is gone (a crash, a SIGKILL) is taken over, after checking that none of the process
 * groups it names survived: a leftover wrangler would hold the port and the database.
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type LockInfo = {
  pid: number;
  url: string;
  startedAt: string;
  /** Process groups started by the owner, by role ("edge", "worker"). */
  groups: Record<string, number>;
};

export class AlreadyRunning extends Error {}

export function lockPath(stateDir: string): string {
  return join(stateDir, "start.lock");
}

/** Whether a process (pid > 0) or a process group (pid < 0) exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readLock(stateDir: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(lockPath(stateDir), "utf8")) as LockInfo;
  } catch {
    return undefined;
  }
}

export class StartLock {
  private readonly path: string;
  private info: LockInfo;

  private constructor(path: string, info: LockInfo) {
    this.path = path;
    this.info = info;
  }

  /** Takes the lock or throws AlreadyRunning with what to do. */
  static acquire(stateDir: string, url: string): StartLock {
    const path = lockPath(stateDir);
    const info: LockInfo = {
      pid: process.pid,
      url,
      startedAt: new Date().toISOString(),
      groups: {},
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        // "wx": exclusive create, so two starts racing cannot both win.
        const fd = openSync(path, "wx", 0o600);
        writeFileSync(fd, `${JSON.stringify(info)}\n`);
        closeSync(fd);
        return new StartLock(path, info);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const held = readLock(stateDir);
      if (held && alive(held.pid)) {
        throw new AlreadyRunning(
          `revq is already running from ${stateDir} (pid ${held.pid}, ${held.url}, since ${held.startedAt}).\n` +
            `Use it as it is, or stop it first: Ctrl-C in its terminal, or kill -INT ${held.pid}.`,
        );
      }
      const leftovers = Object.entries(held?.groups ?? {}).filter(([, pgid]) => alive(-pgid));
      if (leftovers.length > 0) {
        const list = leftovers.map(([role, pgid]) => `${role} (process group ${pgid})`).join(", ");
        const kill = leftovers.map(([, pgid]) => `kill -TERM -- -${pgid}`).join("; ");
        throw new AlreadyRunning(
          `An earlier npm start (pid ${held?.pid}) ended without stopping what it started: ${list}.\n` +
            `Stop them with: ${kill}\nthen run npm start again.`,
        );
      }
      // A stale lock: its owner is gone and left nothing running.
      rmSync(path, { force: true });
    }
    throw new AlreadyRunning(`could not take the lock ${path}; is another npm start starting?`);
  }

  /** Records a process group, so that a later start can tell whether it outlived its owner. */
  addGroup(role: string, pgid: number): void {
    this.info = { ...this.info, groups: { ...this.info.groups, [role]: pgid } };
    writeFileSync(this.path, `${JSON.stringify(this.info)}\n`);
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}
