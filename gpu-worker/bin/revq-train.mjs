#!/usr/bin/env node
// revq-train's bin: runs the trainer under a Node that can run TypeScript (bin/launch-ts.mjs).
import { launch } from "../../bin/launch-ts.mjs";

await launch("revq-train", new URL("../src/train/cli.ts", import.meta.url));
