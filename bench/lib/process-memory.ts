/**
 * Memory of another process, from Linux's /proc: its resident set now (VmRSS) and the peak of it
 * (VmHWM). The kernel keeps the peak itself, so nothing between two samples is missed, and
 * writing 5 to /proc/<pid>/clear_refs resets it to the current size: the peak of a stretch of
 * work is VmHWM read after it, once reset before it.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

export type Memory = { rssBytes: number; peakBytes: number };

/** The processes called `name` in process group `group`, with their command lines. */
export function processesInGroup(group: number, name: string): { pid: number; args: string[] }[] {
  const found: { pid: number; args: string[] }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its closing paren.
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    if (comm !== name || pgrp !== group) continue;
    const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean);
    found.push({ pid: Number(entry), args });
  }
  return found;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => {
    const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m"));
    if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib("VmRSS"), peakBytes: kib("VmHWM") };
}

/** Resets the process's peak (VmHWM) to its current resident size. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}
