/** Command-line parsing shared by the commands: their own flags plus --json, --url and --help. */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { usageError } from "./errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export const COMMON_OPTIONS = {
  json: { type: "boolean" },
  url: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

export type Parsed = {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
};

export function parseCommand(command: string, argv: string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed["values"], positionals };
  } catch (error) {
    throw usageError(flagProblem((error as Error).message), `see revq ${command} --help`);
  }
}

/** parseArgs' message said as the CLI's other usage errors are: short, naming the flag. */
export function flagProblem(message: string): string {
  const unknown = message.match(/^Unknown option '([^']+)'/);
  if (unknown) return `unknown option ${unknown[1]}`;
  // "Option '-o, --out <value>' argument missing": the long name says it.
  const option = message.match(/^Option '(?:-\w, )?(--?[\w-]+)[^']*' (.*)$/);
  if (option?.[2] === "argument missing") return `${option[1]} needs a value`;
  if (option?.[2] === "does not take an argument") return `${option[1]} takes no value`;
  return message;
}

export function stringOption(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name];
  return typeof value === "string" ? value : undefined;
}

/** One of `choices`, or the default; anything else is a usage error naming the choices. */
export function choice<T extends string>(
  parsed: Parsed,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const value = stringOption(parsed, name) ?? fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw usageError(
      `--${name} must be one of ${choices.join(", ")}, not ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

export function positiveInt(parsed: Parsed, name: string): number | undefined {
  const text = stringOption(parsed, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw usageError(`--${name} must be a whole number ≥ 1, not ${JSON.stringify(text)}`);
  }
  return value;
}
