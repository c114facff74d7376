/**
 * Live data: loads now, then again `intervalMs` after each answer for as long as `keepGoing`
 * says so (a finished job stops its page's polling). One request at a time. An error keeps the
 * last good data on screen beside the message, so an edge that goes away for a moment blanks
 * nothing; a refused key ends the session instead, and a 404 ends the polling.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { type Api, ApiError, KeyRefused } from "./api.ts";
import { useSession } from "./session-context.ts";

export type Polled<T> = { data: T | undefined; error: unknown; reload(): void };

export function usePoll<T>(
  load: (api: Api) => Promise<T>,
  deps: unknown[],
  intervalMs: number,
  keepGoing: (data: T) => boolean = () => true,
): Polled<T> {
  const { api, signOut } = useSession();
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const wake = useRef<() => void>(() => {});

  // The caller's deps say when `load` asks for something else.
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    setData(undefined);
    setError(undefined);
    const tick = async () => {
      clearTimeout(timer);
      if (stopped || running) return;
      running = true;
      let again = true;
      try {
        const next = await load(api);
        if (stopped) return;
        setData(next);
        setError(undefined);
        again = keepGoing(next);
      } catch (caught) {
        if (stopped) return;
        if (caught instanceof KeyRefused) {
          signOut(`The edge refused the key: ${caught.message}`);
          return;
        }
        setError(caught);
        // Nothing there (a mistyped job id): asking again will not make it appear.
        again = !(caught instanceof ApiError && caught.status === 404);
      } finally {
        running = false;
      }
      if (again && !stopped) timer = setTimeout(tick, intervalMs);
    };
    wake.current = () => void tick();
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [api, ...deps]);

  return { data, error, reload: () => wake.current() };
}
