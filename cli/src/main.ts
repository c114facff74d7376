#!/usr/bin/env node
import cliPackage from "../package.json" with { type: "json" };
import { datasets } from "./commands/datasets.ts";
/**
 * revq: the command line client of a revq edge, local (`npm start`) or deployed. One module per
 * command in commands/; exit codes in errors.ts.
 */
import { decode } from "./commands/decode.ts";
import { jobs } from "./commands/jobs.ts";
import { reconstruct } from "./commands/reconstruct.ts";
import { tokenize } from "./commands/tokenize.ts";
import { tokenizers } from "./commands/tokenizers.ts";
import { train } from "./commands/train.ts";
import { webhooks } from "./commands/webhooks.ts";
import { CliError, EXIT } from "./errors.ts";
import { installInterruptHandler } from "./interrupt.ts";

const COMMANDS = [tokenize, decode, reconstruct, train, datasets, jobs, tokenizers, webhooks];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `usage: revq <command> [options]      (revq <command> --help for each)

${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

The edge and key come from REVQ_URL and REVQ_API_KEY, else from .revq/local.env (written by
npm start) in this folder or above. --url overrides the edge.

Exit codes: 0 done; 1 the job failed or was cancelled; 2 bad usage; 3 no URL or key, or the
key was refused; 4 the edge refused the request; 5 the edge is unreachable or failed; 70 a bug
in revq; 130 Ctrl-C.
`;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(help());
    return;
  }
  // No command is a usage error: scripts that lost their arguments must not pass.
  if (name === undefined) {
    process.stderr.write(help());
    process.exit(EXIT.usage);
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write(`revq ${cliPackage.version}\n`);
    return;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    throw new CliError(`unknown command ${JSON.stringify(name)}`, EXIT.usage, {
      hint: `commands: ${COMMANDS.map((c) => c.name).join(", ")} (revq --help)`,
    });
  }
  await command.run(rest);
}

installInterruptHandler();
const argv = process.argv.slice(2);
try {
  await main(argv);
} catch (error) {
  if (!(error instanceof CliError)) {
    process.stderr.write(
      `revq: unexpected error (a bug; please report it):\n${(error as Error).stack}\n`,
    );
    process.exit(EXIT.bug);
  }
  process.stderr.write(`revq: ${error.message}\n`);
  if (error.hint) process.stderr.write(`  → ${error.hint}\n`);
  // Scripts that asked for JSON get the error as JSON too, on stdout where they read.
  if (argv.includes("--json")) {
    const { message, code, hint, exitCode } = error;
    const document = { error: { message, code, hint, exitCode } };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  }
  process.exit(error.exitCode);
}
