/**
 * Bundles the console into console/dist/, the folder the edge Worker serves as static assets
 * (wrangler.toml [assets]; wrangler dev and deploy run this first through [build]). Everything
 * the page loads is in that folder: the console works with no outside network. The in-browser
 * decoder (src/decode.ts, TensorFlow.js and the worker's models) is split into chunks that only
 * the pages that decode load; the wasm backend's .wasm files are copied beside them (tfjs/).
 *
 * Several edges may start at once (the tests, npm start) and each runs this build: a file is
 * written only when its bytes changed, through a temporary file renamed into place, so a running
 * edge never serves half a file and is not told to reload for nothing.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, "dist");
const SRC = join(HERE, "src");
const CHUNKS = join(DIST, "chunks");

/** Files served as they are: the page, and the headers the asset server adds to every file. */
const STATIC = ["index.html", "_headers"];

/** The wasm backend's builds (plain, SIMD, threaded SIMD): it picks one and fetches it itself. */
const WASM_FROM = dirname(
  createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm/dist/index.js"),
);
const WASM_TO = join(DIST, "tfjs"); // src/decoder-backend.ts, WASM_DIR

function writeIfChanged(path: string, bytes: Uint8Array): void {
  if (existsSync(path) && Buffer.from(readFileSync(path)).equals(bytes)) return;
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(temporary, bytes);
  renameSync(temporary, path);
}

const result = await build({
  entryPoints: { app: join(SRC, "main.tsx") },
  outdir: DIST,
  bundle: true,
  format: "esm",
  splitting: true,
  chunkNames: `${basename(CHUNKS)}/[name]-[hash]`,
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  write: false,
  logLevel: "warning",
});
for (const file of result.outputFiles) {
  mkdirSync(dirname(file.path), { recursive: true });
  writeIfChanged(file.path, file.contents);
}
// Chunks are named by their content hash: those of earlier sources would pile up. (Dot files
// are another build's temporary files, on their way to being renamed.)
const written = new Set(result.outputFiles.map((file) => file.path));
for (const name of readdirSync(CHUNKS)) {
  const path = join(CHUNKS, name);
  if (!name.startsWith(".") && !written.has(path)) rmSync(path, { force: true });
}
mkdirSync(WASM_TO, { recursive: true });
for (const name of readdirSync(WASM_FROM).filter((n) => n.endsWith(".wasm"))) {
  writeIfChanged(join(WASM_TO, name), readFileSync(join(WASM_FROM, name)));
}
for (const name of STATIC) writeIfChanged(join(DIST, name), readFileSync(join(SRC, name)));
