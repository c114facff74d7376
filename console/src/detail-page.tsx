/**
 * What every detail page (a dataset, a tokenizer, a job, a webhook endpoint) shares: a link back
 * to its list, a title, the last error, "Loading…" until the first answer, then the page's own
 * content; and the labelled values of its `<dl class="fields">`.
 */
import type { ComponentChildren } from "preact";
import { ErrorNote } from "./error-note.tsx";
import { href } from "./hash-route.ts";

export function DetailPage<T>(props: {
  /** The list's route ("jobs"); the link reads "← Jobs". */
  list: string;
  title: ComponentChildren;
  /** Shown above the content, which stays. */
  error: unknown;
  data: T | undefined;
  /** What is loading ("the job"), until `data` or an error comes. */
  loading: string;
  children: (data: T) => ComponentChildren;
}) {
  const { list, data, error } = props;
  return (
    <section>
      <p class="back">
        <a href={href([list])}>← {list[0].toUpperCase() + list.slice(1)}</a>
      </p>
      <h1>{props.title}</h1>
      <ErrorNote error={error} />
      {data === undefined
        ? error === undefined && <p class="loading">Loading {props.loading}…</p>
        : props.children(data)}
    </section>
  );
}

/** One name and its value in a `<dl class="fields">`. */
export function Field(props: { name: string; class?: string; children: ComponentChildren }) {
  return (
    <div>
      <dt>{props.name}</dt>
      <dd class={props.class}>{props.children}</dd>
    </div>
  );
}
