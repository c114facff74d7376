// TaskError lives below tasks/ (the tokenizer cache and pipeline/ throw it too); worker.ts and
// tasks/index.ts still import it from here, until their owners move the import to ../task-error.ts.
export { TaskError } from "../task-error.ts";

/** Why the worker stopped a task from outside: the abort reason of the task's signal. */
export class TaskStopped extends Error {
  override name = "TaskStopped";
  readonly why: "cancelled" | "lease-lost" | "shutdown";

  constructor(why: TaskStopped["why"], message: string) {
    super(message);
    this.why = why;
  }
}
