/** The task kinds this worker runs, and the runner that sends each task to its kind's code. */
import { JOB_KINDS, type TaskKind } from "@revq/shared";
import { TaskError } from "../task-error.ts";
import type { TaskRunner } from "../worker.ts";
import type { Pipelines } from "./context.ts";
import { runEncode } from "./encode.ts";
import { runExtract } from "./extract.ts";
import { runReconstruct } from "./reconstruct.ts";
import { runTrain } from "./train.ts";

/** What this worker leases: every kind. */
export const WORKER_KINDS: TaskKind[] = [...JOB_KINDS];

export function taskRunner(pipelines: Pipelines): TaskRunner {
  return (task, context) => {
    switch (task.payload.kind) {
      case "encode":
        return runEncode(task, context, pipelines);
      case "reconstruct":
        return runReconstruct(task, context, pipelines);
      case "extract":
        return runExtract(task, context, pipelines);
      case "train":
        return runTrain(task, context, pipelines);
      default:
        // Never leased (see WORKER_KINDS); a worker that can run it may take it after this one.
        throw new TaskError(
          "unsupported-kind",
          `This worker does not run ${task.kind} tasks.`,
          true,
        );
    }
  };
}
