/**
 * RFC 9457 problem documents: how the edge answers every failure (docs/api.md, "Errors"), and how
 * its clients (the CLI, the GPU worker) read one back.
 */
import * as z from "zod";

export const PROBLEM_MEDIA_TYPE = "application/problem+json";

/** A problem's `type` is this prefix plus its stable code. */
export const PROBLEM_TYPE_PREFIX = "urn:revq:problem:";

/** What a client relies on in a problem; an edge may send more. */
const ProblemAnswer = z.looseObject({
  code: z.string(),
  detail: z.string().optional(),
  status: z.number().optional(),
  title: z.string().optional(),
});
export type ProblemAnswer = z.infer<typeof ProblemAnswer>;

/** The problem in an answer's body, or undefined when it is none (a proxy's error page, say). */
export function readProblem(text: string): ProblemAnswer | undefined {
  try {
    const parsed = ProblemAnswer.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
