/**
 * What the GPU path asks of the device, counted on the webgpu backend (a software adapter counts
 * what a GPU would: bench/lib/gpu-work.ts): dispatches, submits, new buffers and buffer maps of
 * one training step (the paper's 512 × 16384 shape at batch 1, `small` at 16, plain and with a
 * residual rectifier, `tiny` at 32) and of one DC-AE f32c32 encode and decode (64×64, batch 1),
 * with the tfjs kernels of each step.
 * It runs bench/train.ts's and bench/models.ts's own cases, one process each, so the figures are
 * theirs. With `--against REV` it counts the same cases at that revision too (a temporary git
 * worktree sharing this checkout's node_modules), so that a change's effect is one diff.
 *
 *   npm run bench:gpu-counts
 *   npm run bench:gpu-counts -- --against f63bcbd
 *
 * Results: bench/results/gpu-counts.json.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeResults } from "./lib/results.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NODE = join(ROOT, "node_modules/.bin/node");

const CASES = [
  ["train.ts", { shape: "512x16384", batch: 1, assignment: "exact", what: "step" }],
  ["train.ts", { shape: "small", batch: 16, assignment: "exact", what: "step" }],
  ["train.ts", { shape: "small-residual", batch: 16, assignment: "exact", what: "step" }],
  ["train.ts", { shape: "tiny", batch: 32, assignment: "exact", what: "step" }],
  ["models.ts", { kind: "dcae", half: "encoder", side: 64, batch: 1 }],
  ["models.ts", { kind: "dcae", half: "decoder", side: 64, batch: 1 }],
] as const;

/** `gpuWork` null: the revision has no such case (an older one, counted `--against`). */
type Counted = { case: string; kernels?: number; gpuWork: unknown };

function countAt(root: string): Counted[] {
  return CASES.map(([script, c]) => {
    const name = "shape" in c ? `train ${c.shape} batch ${c.batch}` : `dcae ${c.half} 64×64`;
    const arg = JSON.stringify({ backend: "webgpu", c, minMs: 1 });
    let out: string;
    try {
      out = execFileSync(NODE, [join(root, "bench", script), "--case", arg], {
        cwd: root,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
    } catch {
      if (root === ROOT) throw new Error(`${name}: the case failed`);
      console.log(`${name}: not at this revision`);
      return { case: name, gpuWork: null };
    }
    const [row] = JSON.parse(out.trim().split("\n").at(-1) as string);
    console.log(`${name}: ${JSON.stringify(row.gpuWork ?? row.work)}`);
    return { case: name, kernels: row.kernels, gpuWork: row.gpuWork ?? row.work };
  });
}

/** A worktree of `rev` whose packages find this checkout's installed modules. */
function worktree(rev: string): string {
  const dir = mkdtempSync(join(tmpdir(), "revq-gpu-counts-"));
  execFileSync("git", ["worktree", "add", "--detach", dir, rev], { cwd: ROOT, stdio: "ignore" });
  for (const pkg of ["", "edge", "shared", "gpu-worker", "cli"]) {
    const modules = join(ROOT, pkg, "node_modules");
    if (existsSync(modules)) symlinkSync(modules, join(dir, pkg, "node_modules"));
  }
  return dir;
}

/** `rev` as a full commit hash, so that the results name it unambiguously; refused before any counting. */
function commitOf(rev: string): string {
  try {
    return execFileSync("git", ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
  } catch {
    console.error(`--against: ${JSON.stringify(rev)} is not a commit of this repository`);
    process.exit(2);
  }
}

const at = process.argv.indexOf("--against");
const against = at >= 0 ? commitOf(process.argv[at + 1] ?? "") : undefined;
const figures: Record<string, unknown> = { head: countAt(ROOT) };
if (against) {
  const dir = worktree(against);
  try {
    console.log(`at ${against}:`);
    figures.against = { rev: against, counts: countAt(dir) };
  } finally {
    execFileSync("git", ["worktree", "remove", "--force", dir], { cwd: ROOT, stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`written to ${writeResults("gpu-counts", figures)}`);
