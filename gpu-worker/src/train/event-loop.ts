/**
 * Turns of the event loop during training. On backends whose reads resolve at once (tensorflow,
 * wasm, cpu) every await of an epoch is a microtask, so without a turn no timer or I/O would run
 * from its first step to its checkpoint: the worker's heartbeats would not go out (no progress
 * within the epoch), and the request carrying an epoch's metrics, begun as it ended, would leave
 * only with the next epoch's.
 */

/** Often enough for a heartbeat to leave promptly; a turn costs about a millisecond. */
const TURN_MS = 100;

let lastTurn = 0;

/** Lets timers and I/O run when TURN_MS have passed since the last turn (one event loop, one clock). */
export async function letEventLoopTurn(): Promise<void> {
  if (performance.now() - lastTurn < TURN_MS) return;
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
  lastTurn = performance.now();
}
