/**
 * A one-off asynchronous load for a page (an image's bytes, a decode): its result or its error,
 * run again when `deps` change; a result that arrives after the page moved on is dropped.
 */
import { useEffect, useState } from "preact/hooks";

export type Task<T> =
  | { state: "running" }
  | { state: "done"; value: T }
  | { state: "failed"; error: unknown };

export function useTask<T>(run: () => Promise<T>, deps: unknown[]): Task<T> {
  const [task, setTask] = useState<Task<T>>({ state: "running" });
  useEffect(() => {
    let current = true;
    setTask({ state: "running" });
    run().then(
      (value) => current && setTask({ state: "done", value }),
      (error: unknown) => current && setTask({ state: "failed", error }),
    );
    return () => {
      current = false;
    };
  }, deps);
  return task;
}
