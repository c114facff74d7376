/**
 * State transitions as D1 batches. A D1 batch is a transaction, so a transition written as one
 * either happens whole or not at all; its statements are named steps, and each says how many
 * rows it changed, so that a caller reads `changed.task`, never a position in the batch.
 */
import { sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "./client.ts";

/** A statement that writes rows (no RETURNING): its outcome is the number of rows it changed. */
export type Write = BatchItem<"sqlite">;

/**
 * The steps of one transition, run in the order written: a later step may be guarded on an
 * earlier one (`previousChanged`, or a condition on the state it left). A list is one step of
 * many statements (a job's deliveries); undefined, a step this transition leaves out.
 */
export type Steps = Record<string, Write | Write[] | undefined>;

/** The rows each step of a transition changed. */
export type Changes<S extends Steps> = { [K in keyof S]: number };

/** True in a statement of a batch when the statement just before it changed a row. */
export const previousChanged = sql`changes() > 0`;

/** Runs transitions, one after another, as one D1 batch; what each of their steps changed. */
export async function runTransitions<S extends Steps>(
  db: Db,
  transitions: S[],
): Promise<Changes<S>[]> {
  const writesOf = (step: Steps[string]) => (step === undefined ? [] : [step].flat());
  const writes = transitions.flatMap((steps) => Object.values(steps).flatMap(writesOf));
  if (writes.length === 0) return transitions.map((steps) => changesOf(steps, () => 0));
  const results = await db.batch(writes as [Write, ...Write[]]);
  // The batch answers in the order of its statements: each step takes the next of them.
  const outcomes = results.values();
  const next = () => (outcomes.next().value as D1Result).meta.changes;
  return transitions.map((steps) =>
    changesOf(steps, (step) => writesOf(step).reduce((sum) => sum + next(), 0)),
  );
}

function changesOf<S extends Steps>(steps: S, count: (step: Steps[string]) => number): Changes<S> {
  return Object.fromEntries(
    Object.entries(steps).map(([name, step]) => [name, count(step)]),
  ) as Changes<S>;
}

/** Runs one transition as one D1 batch; what each of its steps changed. */
export async function runTransition<S extends Steps>(db: Db, steps: S): Promise<Changes<S>> {
  const [changes] = await runTransitions(db, [steps]);
  return changes;
}
