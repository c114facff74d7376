/**
 * The one error type every parser in shared/ throws on bad input. `code` is stable and
 * machine-readable (the edge maps it to a problem+json `type`); `message` says what was wrong
 * in words a user can act on.
 */
export class FormatError extends Error {
  readonly format: string;
  readonly code: string;

  constructor(format: string, code: string, message: string) {
    super(`${format}: ${message}`);
    this.name = "FormatError";
    this.format = format;
    this.code = code;
  }
}
