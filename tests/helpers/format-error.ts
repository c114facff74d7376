import { FormatError } from "../../shared/src/errors.ts";

/** Runs f and returns the FormatError it throws; anything else (or nothing) fails the test. */
export function formatError(f: () => unknown): FormatError {
  try {
    f();
  } catch (error) {
    if (error instanceof FormatError) return error;
    throw new Error(`expected a FormatError, got ${String(error)}`);
  }
  throw new Error("expected a FormatError, nothing was thrown");
}
