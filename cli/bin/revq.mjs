#!/usr/bin/env node
// revq's bin: runs the CLI under a Node that can run TypeScript (bin/launch-ts.mjs).
import { launch } from "../../bin/launch-ts.mjs";

await launch("revq", new URL("../src/main.ts", import.meta.url));
