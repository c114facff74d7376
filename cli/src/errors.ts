/**
 * What went wrong, as the exit code says it, so that scripts can tell "fix your command" from
 * "try again later" without reading the message.
 */
export const EXIT = {
  ok: 0,
  /** The work ran and failed: the job failed or was cancelled. */
  jobFailed: 1,
  /** The command line is wrong: a flag, an argument, a file that cannot be read. */
  usage: 2,
  /** No edge URL or API key, or the edge refused the key (401/403). */
  auth: 3,
  /** The edge refused the request (another 4xx): the detail says why. */
  refused: 4,
  /** The edge could not be reached, failed (5xx) or answered something unexpected. */
  unavailable: 5,
  /** A bug in the CLI (EX_SOFTWARE): nothing the user did. */
  bug: 70,
  /** Ctrl-C. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** What to do about it, when there is something to say. */
  readonly hint: string | undefined;
  /** The edge's problem code (docs/api.md, "Errors"), when the edge said no. */
  readonly code: string | undefined;

  constructor(message: string, exitCode: ExitCode, options: { hint?: string; code?: string } = {}) {
    super(message);
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.code = options.code;
  }
}

export const usageError = (message: string, hint?: string) =>
  new CliError(message, EXIT.usage, { hint });
