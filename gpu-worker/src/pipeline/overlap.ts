/**
 * A task's chunks through its two halves at once: `load` (downloads, image decoding, which sharp
 * runs off the main thread) and `compute` (the device), with up to `ahead` chunks loading or
 * computing beyond the one being consumed. So the device finds the next chunk loaded, and queued
 * behind the current one, instead of waiting for the fetch, and the CPU's share of a chunk
 * (`consume`: the nearest-code search, writing results) runs while the device computes the next.
 * Chunks are consumed in order. The first failure ends the run; what is still in flight is left
 * to settle, its rejections handled.
 */
export type Overlap<L, C> = {
  chunks: number;
  load: (chunk: number) => Promise<L>;
  compute: (loaded: L, chunk: number) => Promise<C>;
  consume: (computed: C, chunk: number) => void | Promise<void>;
  ahead?: number;
  signal?: AbortSignal;
};

/** Two chunks ahead: one on the device's queue behind the one it runs, one loading. */
const AHEAD = 2;

export async function overlapped<L, C>({
  chunks,
  load,
  compute,
  consume,
  ahead = AHEAD,
  signal,
}: Overlap<L, C>): Promise<void> {
  const started: Promise<C>[] = [];
  const start = (chunk: number) => {
    if (chunk >= chunks) return;
    const work = load(chunk).then((loaded) => compute(loaded, chunk));
    work.catch(() => undefined); // awaited in order below; never an unhandled rejection meanwhile
    started[chunk] = work;
  };
  for (let chunk = 0; chunk <= ahead; chunk++) start(chunk);
  for (let chunk = 0; chunk < chunks; chunk++) {
    signal?.throwIfAborted();
    const computed = await started[chunk];
    delete started[chunk];
    await consume(computed, chunk);
    start(chunk + ahead + 1);
  }
}
