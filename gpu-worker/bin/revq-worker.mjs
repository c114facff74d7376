#!/usr/bin/env node
// revq-worker's bin: runs the worker under a Node that can run TypeScript (bin/launch-ts.mjs).
import { launch } from "../../bin/launch-ts.mjs";

await launch("revq-worker", new URL("../src/main.ts", import.meta.url));
