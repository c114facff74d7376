/**
 * Packs what a GPU box without an npm registry needs to run the project's GPU benchmarks beside
 * the PyTorch baseline (docs/benchmarks.md, "On a GPU"): esbuild bundles of bench/train.ts,
 * bench/models.ts and bench/encode-pipeline.ts, this Node (stripped, xz), Dawn's binding (npm
 * `webgpu`, its .node xz'd), sharp with its Linux x64 libvips (xz'd), Debian's Vulkan loader,
 * ../shared/baselines/revq_torch.py and run.sh. The folder is what a device run carries; it
 * stays under its 64 MiB.
 *
 *   npm run gpu-check:pack            # → gpu-check/ (git-ignored)
 */
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pack = join(root, "gpu-check");
const baseline = join(root, "..", "shared", "baselines", "revq_torch.py");

rmSync(pack, { recursive: true, force: true });
mkdirSync(join(pack, "bench"), { recursive: true });

// The benchmarks re-run their own file for each case: bundles that are ES modules keep that.
for (const name of ["train", "models", "encode-pipeline"]) {
  await build({
    entryPoints: [join(root, "bench", `${name}.ts`)],
    outfile: join(pack, "bench", `${name}.mjs`),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    external: ["webgpu", "sharp"],
    // Some CommonJS dependencies call require(); give the bundle one.
    banner: {
      js: "import { createRequire as bannerRequire } from 'node:module'; const require = bannerRequire(import.meta.url);",
    },
    logLevel: "warning",
  });
}

// Dawn: the package's loader and its Linux x64 binary, compressed.
const webgpu = join(root, "node_modules", "webgpu");
const dawnDir = join(pack, "node_modules", "webgpu", "dist", "linux-x64");
mkdirSync(dawnDir, { recursive: true });
for (const file of ["index.js", "package.json"]) {
  copyFileSync(join(webgpu, file), join(pack, "node_modules", "webgpu", file));
}
xz(join(webgpu, "dist", "linux-x64", "dawn.node"), join(pack, "dawn.node.xz"));

// sharp (image decoding in the encode pipeline): its packages as npm installed them, libvips
// (18 MB) compressed.
for (const name of ["sharp", "detect-libc", "semver", "@img/colour", "@img/sharp-linux-x64"]) {
  cpSync(join(root, "node_modules", name), join(pack, "node_modules", name), { recursive: true });
}
const libvipsLib = join(pack, "node_modules", "@img", "sharp-libvips-linux-x64", "lib");
cpSync(join(root, "node_modules", "@img", "sharp-libvips-linux-x64"), dirname(libvipsLib), {
  recursive: true,
});
for (const file of readdirSync(libvipsLib).filter((f) => f.startsWith("libvips-cpp.so"))) {
  xz(join(libvipsLib, file), join(libvipsLib, `${file}.xz`)); // run.sh unpacks it beside
  rmSync(join(libvipsLib, file));
}

// Node: the one npm start and npm test run on (the `node` devDependency), without debug info.
const node = join(pack, "node");
copyFileSync(join(root, "node_modules", "node", "bin", "node"), node);
execFileSync("strip", [node]);
xz(node, join(pack, "node.xz"));
rmSync(node);

// Debian's Vulkan loader, for a box that has the NVIDIA driver but no loader.
mkdirSync(join(pack, "debs"));
const download = () =>
  execFileSync("apt-get", ["download", "libvulkan1"], {
    cwd: join(pack, "debs"),
    stdio: "inherit",
  });
try {
  download();
} catch {
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit" }); // a new machine has no lists
  download();
}

mkdirSync(join(pack, "baseline"));
if (!existsSync(baseline)) throw new Error(`no baseline at ${baseline}`);
copyFileSync(baseline, join(pack, "baseline", "revq_torch.py"));
cpSync(join(root, "scripts", "gpu-check", "run.sh"), join(pack, "run.sh"));

const bytes = du(pack);
console.log(`${pack}: ${(bytes / 2 ** 20).toFixed(1)} MiB`);
if (bytes > 60 * 2 ** 20) throw new Error("the pack is over the 60 MiB a device run can carry");

function xz(from: string, to: string): void {
  execFileSync("sh", ["-c", `xz -9 -T0 -c "${from}" > "${to}"`]);
}

function du(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, entry) => n + du(join(path, entry)), 0);
}
