/**
 * Runs one parser over many generated inputs and counts what it did with them: accepted, refused
 * with the error it is meant to refuse with (FormatError for the shared parsers), or anything
 * else, which is a bug: those inputs are kept so they can be replayed.
 */
import { FormatError } from "../../../shared/src/errors.ts";
import { Rng } from "../../../shared/src/quant/rng.ts";

export type FuzzTarget<T> = {
  name: string;
  /** Valid inputs, made by the real writers: what the mutations start from. */
  seeds: () => Promise<T[]>;
  /** A new input: random, or a mutation of the seeds. */
  generate: (rng: Rng, seeds: readonly T[]) => T;
  /** Parses the input the way the project does; resolves or returns when accepted. */
  parse: (input: T) => unknown;
  size: (input: T) => number;
  /** The input as text for the report: base64 of bytes, JSON of values. */
  show: (input: T) => string;
  /** The refusals this parser is meant to make; FormatError unless said otherwise. */
  refusal?: (error: unknown) => boolean;
};

export type Failure = { error: string; size: number; input: string };

export type ParserFigures = {
  parser: string;
  inputs: number;
  accepted: number;
  formatErrors: number;
  otherErrors: number;
  /** How often each refusal code came up: which checks the inputs reached. */
  codes: Record<string, number>;
  slowest: { ms: number; bytes: number };
  /** The first few inputs that raised something other than the expected refusal. */
  failures: Failure[];
};

const KEPT_FAILURES = 10;
/** Inputs over this are cut in the report; the counts still cover them. */
const SHOWN_CHARS = 4096;

const isFormatError = (error: unknown) => error instanceof FormatError;

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}\n${error.stack ?? ""}`;
  return `non-Error thrown: ${String(error)}`;
}

function codeOf(error: unknown): string {
  if (error instanceof FormatError) return `${error.format}/${error.code}`;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : "error";
}

export async function fuzzParser<T>(
  target: FuzzTarget<T>,
  options: { inputs: number; seed: number },
): Promise<ParserFigures> {
  const rng = new Rng(options.seed);
  const seeds = await target.seeds();
  const refusal = target.refusal ?? isFormatError;
  const figures: ParserFigures = {
    parser: target.name,
    inputs: 0,
    accepted: 0,
    formatErrors: 0,
    otherErrors: 0,
    codes: {},
    slowest: { ms: 0, bytes: 0 },
    failures: [],
  };
  for (let i = 0; i < options.inputs; i++) {
    // The valid inputs first, so that a parser refusing them shows up as accepted: 0.
    const input = i < seeds.length ? seeds[i] : target.generate(rng, seeds);
    const started = performance.now();
    try {
      const result = target.parse(input);
      if (result instanceof Promise) await result;
      figures.accepted++;
    } catch (error) {
      if (refusal(error)) {
        figures.formatErrors++;
        const code = codeOf(error);
        figures.codes[code] = (figures.codes[code] ?? 0) + 1;
      } else {
        figures.otherErrors++;
        if (figures.failures.length < KEPT_FAILURES) {
          figures.failures.push({
            error: describe(error),
            size: target.size(input),
            input: target.show(input).slice(0, SHOWN_CHARS),
          });
        }
      }
    }
    const ms = performance.now() - started;
    if (ms > figures.slowest.ms) figures.slowest = { ms, bytes: target.size(input) };
    figures.inputs++;
  }
  figures.slowest.ms = Math.round(figures.slowest.ms * 1000) / 1000;
  return figures;
}
