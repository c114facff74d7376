/** Why the worker stopped a task from outside: the abort reason of the task's signal. */
export class TaskStopped extends Error {
  override name = "TaskStopped";
  readonly why: "cancelled" | "lease-lost" | "shutdown";

  constructor(why: TaskStopped["why"], message: string) {
    super(message);
    this.why = why;
  }
}
