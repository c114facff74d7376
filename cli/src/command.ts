/** What every command is, and the setup they share: flags, output, the connection. */
import type { ParseArgsConfig } from "node:util";
import { Api } from "./api.ts";
import { type Parsed, parseCommand, stringOption } from "./args.ts";
import { resolveConnection } from "./config.ts";
import { Output } from "./output.ts";

export type Command = {
  name: string;
  /** One line for `revq --help`. */
  summary: string;
  /** The command's own --help. */
  help: string;
  run(argv: string[]): Promise<void>;
};

export type Setup = { parsed: Parsed; out: Output; api: () => Api };

/**
 * Parses the command's flags; --help prints its text and returns undefined. The connection is
 * resolved only when a command needs it, so that usage errors come first.
 */
export function setup(
  command: Pick<Command, "name" | "help">,
  argv: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): Setup | undefined {
  const parsed = parseCommand(command.name, argv, options);
  if (parsed.values.help) {
    process.stdout.write(command.help);
    return undefined;
  }
  const out = new Output(parsed.values.json === true);
  const api = () =>
    new Api(resolveConnection(process.env, process.cwd(), stringOption(parsed, "url")));
  return { parsed, out, api };
}

/** The flags every command takes, for the help texts. */
export const COMMON_HELP = `  --json              one JSON document on stdout, for scripts
  --url <url>         the edge (default REVQ_URL, else .revq/local.env)
  -h, --help          this text
`;
