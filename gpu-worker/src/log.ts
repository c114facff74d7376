/**
 * Structured logs: one JSON object per line (for log collectors), or a short readable line when
 * a person watches a terminal. Every line has a time, a level and a message; the rest are fields.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = "json" | "pretty";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line (a task's id, say). */
  child(fields: Fields): Logger;
}

export type LoggerOptions = {
  format: LogFormat;
  level?: LogLevel;
  /** Where finished lines go (without the newline); stdout by default. */
  write?: (line: string) => void;
  now?: () => Date;
};

/** Errors become their name, message and code, which JSON.stringify would drop. */
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  return value;
}

function jsonLine(time: Date, level: LogLevel, message: string, fields: Fields): string {
  const record: Fields = { time: time.toISOString(), level, msg: message };
  for (const [key, value] of Object.entries(fields)) record[key] = plain(value);
  return JSON.stringify(record);
}

const PRETTY_LEVEL: Record<LogLevel, string> = {
  debug: "DBG",
  info: "INF",
  warn: "WRN",
  error: "ERR",
};

function prettyValue(value: unknown): string {
  const v = plain(value);
  if (typeof v === "string") return /[\s"=]/.test(v) || v === "" ? JSON.stringify(v) : v;
  if (v instanceof Object && "message" in v) return JSON.stringify((v as Error).message);
  return JSON.stringify(v);
}

function prettyLine(time: Date, level: LogLevel, message: string, fields: Fields): string {
  const clock = time.toISOString().slice(11, 23);
  const rest = Object.entries(fields)
    .map(([key, value]) => `${key}=${prettyValue(value)}`)
    .join(" ");
  return `${clock} ${PRETTY_LEVEL[level]} ${message}${rest ? ` ${rest}` : ""}`;
}

export function createLogger(options: LoggerOptions, fields: Fields = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? "info");
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const format = options.format === "json" ? jsonLine : prettyLine;
  const emit =
    (level: LogLevel) =>
    (message: string, extra: Fields = {}) => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      write(format(now(), level, message, { ...fields, ...extra }));
    };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    child: (more) => createLogger(options, { ...fields, ...more }),
  };
}

/** JSON unless stdout is a terminal: a pipe or a file is read by a program, a TTY by a person. */
export function defaultLogFormat(): LogFormat {
  return process.stdout.isTTY ? "pretty" : "json";
}
