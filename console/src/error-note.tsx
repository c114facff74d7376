/** A failed call, said in a sentence; nothing when there is none. */
import { describeError, EdgeUnreachable } from "./api.ts";

export function ErrorNote({ error }: { error: unknown }) {
  if (error === undefined) return null;
  const away = error instanceof EdgeUnreachable;
  return (
    <p class={away ? "note note-away" : "note note-error"} role="alert">
      {describeError(error)}
    </p>
  );
}
