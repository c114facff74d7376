/** The fuzz figures as a table to read, and whether they show a bug. */
import type { ParserFigures } from "./harness.ts";
import type { RouteFigures } from "./http.ts";

export type FuzzFigures = { parsers: ParserFigures[]; http: RouteFigures[] };

/** Non-FormatError throws and 5xx answers: each one is a bug. */
export function bugsIn(figures: FuzzFigures): number {
  return (
    figures.parsers.reduce((n, p) => n + p.otherErrors, 0) +
    figures.http.reduce((n, r) => n + r.serverErrors, 0)
  );
}

const pad = (text: string | number, width: number) => String(text).padEnd(width);
const padLeft = (text: string | number, width: number) => String(text).padStart(width);

export function summary(figures: FuzzFigures): string {
  const lines = [
    `${pad("parser", 36)}${padLeft("inputs", 9)}${padLeft("accepted", 10)}${padLeft("refused", 9)}${padLeft("other", 7)}   slowest`,
  ];
  for (const p of figures.parsers) {
    lines.push(
      `${pad(p.parser, 36)}${padLeft(p.inputs, 9)}${padLeft(p.accepted, 10)}${padLeft(p.formatErrors, 9)}${padLeft(p.otherErrors, 7)}   ${p.slowest.ms} ms (${p.slowest.bytes} B)`,
    );
    for (const f of p.failures)
      lines.push(`    ${f.error.split("\n")[0]}  input (${f.size} B): ${f.input}`);
  }
  if (figures.http.length > 0) {
    lines.push(
      "",
      `${pad("route", 44)}${padLeft("requests", 9)}${padLeft("5xx", 5)}   statuses; slowest`,
    );
    for (const r of figures.http) {
      const statuses = Object.entries(r.statuses)
        .map(([status, n]) => `${status}×${n}`)
        .join(" ");
      lines.push(
        `${pad(r.route, 44)}${padLeft(r.requests, 9)}${padLeft(r.serverErrors, 5)}   ${statuses}; ${r.slowest.ms} ms (${r.slowest.bytes} B, ${r.slowest.status})`,
      );
      for (const f of r.failures)
        lines.push(`    ${f.status} ${f.path}: ${f.answer.slice(0, 300)}`);
    }
  }
  return lines.join("\n");
}
